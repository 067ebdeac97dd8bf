import Glibc
import MmapKit

// Each operation: resolve the raw step against the current state, predict the outcome, run it
// through MmapKit, and update the model. A step whose handle is gone (after shrinking) is skipped.

/// How the model judges an MmapError thrown by a step.
enum Prediction {
    /// The step must succeed.
    case success
    /// The step must fail with this code.
    case failure(MmapError.Code)
    /// The kernel may refuse (an advice it does not support for this mapping, a lock limit):
    /// either outcome is fine, but an error must leave the state unchanged.
    case either
}

extension ModelRunner {
    /// Runs one step; throws a ModelFailure when MmapKit disagrees with the model.
    func apply(_ op: ModelOp) throws {
        lastNote = ""
        noteEmitted = false
        switch op.kind {
        case .mapFile: try mapFile(op)
        case .mapAnonymous: try mapAnonymous(op)
        case .write: try write(op)
        case .flush: try flush(op)
        case .advise: try advise(op)
        case .adviseDestructively: try adviseDestructively(op)
        case .lock: try lock(op)
        case .remap: try remap(op)
        case .grow: try grow(op)
        case .makeReadOnly, .makeMutable: try reprotect(op)
        case .share: try share(op)
        case .split: try split(op)
        case .restrict: try restrict(op)
        case .drop: try drop(op)
        case .unmap: try unmap(op)
        case .reserve: try reserve(op)
        case .commit: try commit(op)
        case .decommit: try decommit(op)
        case .growable: try growable(op)
        case .growableGrow: try growableGrow(op)
        case .truncate: try truncate(op)
        case .populate: try populate(op)
        }
        if tracing && !noteEmitted && !lastNote.isEmpty { emit?("\(step). \(lastNote)") }
        if !ambiguous.isEmpty { try resolveAmbiguous() }
    }

    /// Judges the outcome of a library call against the prediction. Returns whether it succeeded.
    func judge(_ what: String, _ prediction: Prediction, _ body: () throws(MmapError) -> Void) throws -> Bool {
        if tracing {
            emit?("\(step). \(lastNote)")
            noteEmitted = true
        }
        do {
            try body()
        } catch {
            switch prediction {
            case .success:
                throw ModelFailure("\(what) threw \(error.code): \(error)")
            case .failure(let code):
                if error.code != code { throw ModelFailure("\(what) threw \(error.code), expected \(code): \(error)") }
            case .either:
                break
            }
            if tracing { emit?("   -> threw \(error.code) (errno \(error.errno))") }
            return false
        }
        if case .failure(let code) = prediction {
            throw ModelFailure("\(what) succeeded, expected an error with code \(code)")
        }
        if tracing { emit?("   -> ok") }
        return true
    }

    /// A range inside `0..<count` from two raw numbers; `outside` makes it end past `count`.
    func range(_ low: Int, _ high: Int, in count: Int, outside: Bool = false) -> Range<Int> {
        let a = low % (count + 1)
        if outside { return a..<(count + 1 + high % 3) }
        let b = a + high % (count - a + 1)
        return a..<b
    }

    // MARK: - Mapping

    func mapFile(_ op: ModelOp) throws {
        let fileIndex = op.x % files.count
        let file = files[fileIndex]
        let size = file.bytes.count
        let shared = op.w & 1 != 0
        let writable = op.w & 2 != 0
        let viaPath = op.w & 4 != 0
        let readOnlyDescriptor = op.w & 8 != 0 && !viaPath
        let populate = op.w & 16 != 0
        let offset: Int
        switch op.y % 5 {
        case 0: offset = 0
        case 1: offset = min(size, (op.y / 5 % 3) * page)
        case 2: offset = (op.y / 5) % (size + 1)
        case 3: offset = size
        default: offset = size + 1 + (op.y / 5) % (2 * page)
        }
        let count: Int?
        switch op.z % 5 {
        case 0: count = nil
        case 1: count = max(0, size - offset)
        case 2: count = 1 + (op.z / 5) % (2 * page)
        case 3: count = max(0, size - offset) + 1 + (op.z / 5) % (2 * page)
        default: count = 0
        }
        let length = count ?? max(0, size - offset)
        var prediction = Prediction.success
        if count == nil && offset > size {
            prediction = .failure(.outOfBounds)
        } else if writable && shared && (readOnlyDescriptor) && length > 0 {
            prediction = .failure(.permissionDenied)
        }
        note(
            "map file\(fileIndex) (\(size) bytes) offset \(offset) count \(count.map(String.init) ?? "nil") "
                + "\(shared ? "shared" : "private") \(writable ? "MutableMmap" : "Mmap")"
                + "\(viaPath ? " by path" : readOnlyDescriptor ? " read-only fd" : " read-write fd")"
                + "\(populate ? " populate" : "") as #\(op.id)"
        )
        let sharing: MmapSharing = shared ? .shared : .private
        let options = MmapOptions().populate(populate)
        let fd = readOnlyDescriptor ? file.readOnly : file.readWrite
        let slot = Slot(id: op.id)
        let ok = try judge("map", prediction) { () throws(MmapError) in
            if writable {
                slot.mutableMap =
                    viaPath
                    ? try MutableMmap(
                        path: file.path,
                        offset: Int64(offset),
                        count: count,
                        sharing: sharing,
                        options: options
                    )
                    : try MutableMmap(
                        fileDescriptor: fd,
                        offset: Int64(offset),
                        count: count,
                        sharing: sharing,
                        options: options
                    )
            } else {
                slot.map =
                    viaPath
                    ? try Mmap(path: file.path, offset: Int64(offset), count: count, sharing: sharing, options: options)
                    : try Mmap(
                        fileDescriptor: fd,
                        offset: Int64(offset),
                        count: count,
                        sharing: sharing,
                        options: options
                    )
            }
        }
        guard ok else { return }
        let slack = offset % page
        let pages = length == 0 ? 0 : alignUp(slack + length) / page
        let mapping = MappingModel(
            pages: [],
            slack: length == 0 ? 0 : slack,
            count: length,
            address: 0,
            writable: writable,
            descriptorWritable: shared ? (!viaPath && !readOnlyDescriptor) || writable : true,
            file: fileIndex,
            fileOffset: offset,
            shared: shared
        )
        mapping.slack = slack
        mapping.pages = (0..<pages).map { mapping.freshPage(at: $0) }
        if length == 0 { mapping.slack = 0 }
        try install(slot, mapping)
    }

    func install(_ slot: Slot, _ mapping: MappingModel) throws {
        let installed = newSlot(slot.id)
        installed.map = slot.map.take()
        installed.mutableMap = slot.mutableMap.take()
        installed.mapping = mapping
        installed.window = 0..<mapping.count
        if !mapping.isEmpty {
            mapping.address = try addressOf(installed) - UInt(mapping.slack)
        }
        checkMapsNow = true
    }

    func mapAnonymous(_ op: ModelOp) throws {
        let shared = op.w & 1 != 0
        let count = op.x % 8 == 0 ? 0 : 1 + op.x / 8 % (4 * page)
        // Options applied after mmap: locking, advice and transparent huge pages (whole mapping).
        let options = [
            MmapOptions(), MmapOptions().lock(), MmapOptions().advice(.random), MmapOptions().hugePages(.transparent),
        ][op.y % 4]
        note(
            "map \(count) bytes of \(shared ? "shared" : "private") anonymous memory as #\(op.id)"
                + "\(op.y % 4 == 0 ? "" : " with \(["", "lock", "MADV_RANDOM", "THP"][op.y % 4])")"
        )
        let slot = Slot(id: op.id)
        _ = try judge("map anonymous", .success) { () throws(MmapError) in
            slot.mutableMap = try MutableMmap(anonymous: count, sharing: shared ? .shared : .private, options: options)
        }
        let mapping = MappingModel(
            pages: [],
            slack: 0,
            count: count,
            address: 0,
            writable: true,
            descriptorWritable: true,
            file: nil,
            fileOffset: 0,
            shared: shared
        )
        mapping.pages = (0..<(alignUp(count) / page)).map { mapping.freshPage(at: $0) }
        try install(slot, mapping)
    }

    // MARK: - Writing

    /// Region pages `[start, end)` of `pages`: how far a write from `start` may go without
    /// touching a page past the end of the file or the tail of the file's last page.
    func writableEnd(_ pages: [PageModel], from start: Int, to end: Int) -> (end: Int, faultAt: Int?) {
        var position = start
        while position < end {
            let index = position / page
            let pageEnd = min(end, (index + 1) * page)
            switch expectation(pages[index]) {
            case .fault:
                return (position, position)
            case .inaccessible:
                return (position, nil)
            case .known, .unknown:
                if case .file(let file, let offset, shared: true) = pages[index].kind {
                    let fileEnd = index * page + (files[file].bytes.count - offset)
                    if fileEnd < pageEnd { return (max(position, fileEnd), nil) }
                }
                position = pageEnd
            }
        }
        return (end, nil)
    }

    /// Applies a successful write of `data` at region offset `start` to the model; pages whose
    /// contents were unknown are read back through `readPage` and adopted.
    func applyWrite(
        _ pages: inout [PageModel],
        at start: Int,
        _ data: [UInt8],
        readPage: (Int) -> Result<[UInt8], ModelFailure>
    ) throws {
        var position = start
        let end = start + data.count
        while position < end {
            let index = position / page
            let pageEnd = min(end, (index + 1) * page)
            let chunk = data[(position - start)..<(pageEnd - start)]
            switch pages[index].kind {
            case .file(let file, let offset, shared: true):
                let fileOffset = offset + position - index * page
                files[file].bytes.replaceSubrange(fileOffset..<(fileOffset + chunk.count), with: chunk)
            case .none:
                throw ModelFailure("model: write to an uncommitted page")
            default:
                if pages[index].content != nil {
                    pages[index].content!.replaceSubrange(
                        (position - index * page)..<(pageEnd - index * page),
                        with: chunk
                    )
                } else {
                    switch readPage(index) {
                    case .success(let bytes):
                        let written = bytes[(position - index * page)..<(pageEnd - index * page)]
                        if Array(written) != Array(chunk) {
                            throw ModelFailure("page \(index) does not read back the bytes just written")
                        }
                        pages[index].content = bytes
                    case .failure(let failure):
                        throw ModelFailure("page \(index) written but not readable: \(failure)")
                    }
                }
            }
            position = pageEnd
        }
    }

    func write(_ op: ModelOp) throws {
        guard let slot = slots[op.id] else { return }
        if let model = slot.reserved {
            try writeReserved(slot, model, op)
            return
        }
        guard slot.isWritable, let mapping = slot.mapping, !slot.window.isEmpty else { return }
        let window = slot.window
        var handleRange = range(op.x, op.y % (2 * page), in: window.count)
        let regionStart = mapping.slack + window.lowerBound
        let (end, faultAt) = writableEnd(
            mapping.pages,
            from: regionStart + handleRange.lowerBound,
            to: regionStart + handleRange.upperBound
        )
        var expectFault = false
        if let faultAt, faultAt == regionStart + handleRange.lowerBound, op.w & 1 != 0 {
            expectFault = true  // a write that starts in a page past the end of the file
            handleRange = handleRange.lowerBound..<min(handleRange.upperBound, alignUp(faultAt + 1) - regionStart)
        } else {
            handleRange = handleRange.lowerBound..<(end - regionStart)
        }
        guard !handleRange.isEmpty else { return }
        let data = writeBytes(handleRange.count, seed: op.z)
        note("write \(data.count) bytes at \(handleRange.lowerBound) of \(slot.name)\(expectFault ? " (faults)" : "")")
        if !expectFault && op.v & 8 != 0 {
            // Every byte of the range is backed: the typed stores (unguarded) may write it.
            note("  through typed stores")
            typedStore(slot, data, at: handleRange.lowerBound, bigEndian: op.v & 16 != 0)
            let address = mapping.address
            try applyWrite(&mapping.pages, at: regionStart + handleRange.lowerBound, data) { index in
                shimGuardedRead(address + UInt(index * page), page)
            }
            return
        }
        if !expectFault && op.v & 32 != 0 {
            // Every byte of the range is backed: the closure's span may write it.
            note("  through withMutableBytes")
            spanStore(slot, data, at: handleRange.lowerBound)
            let address = mapping.address
            try applyWrite(&mapping.pages, at: regionStart + handleRange.lowerBound, data) { index in
                shimGuardedRead(address + UInt(index * page), page)
            }
            return
        }
        let prediction: Prediction = expectFault ? .failure(.fault) : .success
        let ok = try judge("guarded write", prediction) { () throws(MmapError) in
            switch (slot.mutableMap != nil, op.v & 4 != 0) {  // the span store, or the array one
            case (true, false):
                try unsafe slot.mutableMap!.guardedStoreBytes(data.span.bytes, toByteOffset: handleRange.lowerBound)
            case (true, true):
                try slot.mutableMap!.guardedStoreBytes(data, toByteOffset: handleRange.lowerBound)
            case (false, false):
                try unsafe slot.mutableView!.guardedStoreBytes(data.span.bytes, toByteOffset: handleRange.lowerBound)
            case (false, true):
                try slot.mutableView!.guardedStoreBytes(data, toByteOffset: handleRange.lowerBound)
            }
        }
        guard ok else { return }
        let address = mapping.address
        try applyWrite(&mapping.pages, at: regionStart + handleRange.lowerBound, data) { index in
            shimGuardedRead(address + UInt(index * page), page)
        }
    }

    /// Writes `data` at `offset` of the slot's writable map, view or growable file through the
    /// span that `withMutableBytes` lends.
    func spanStore(_ slot: Slot, _ data: [UInt8], at offset: Int) {
        func copy(_ bytes: inout MutableRawSpan) -> Int {
            if data.count % 2 == 0 {
                // A typed span borrowed from the lent one, which is handed back whole.
                var elements = bytes.mutableElements(of: UInt8.self)
                for (index, byte) in data.enumerated() { elements[offset + index] = byte }
            } else {
                for (index, byte) in data.enumerated() {
                    bytes.storeBytes(of: byte, toByteOffset: offset + index, as: UInt8.self)
                }
            }
            return bytes.byteCount
        }
        if slot.mutableMap != nil {
            _ = slot.mutableMap!.withMutableBytes { copy(&$0) }
        } else if slot.mutableView != nil {
            _ = slot.mutableView!.withMutableBytes { copy(&$0) }
        } else {
            _ = slot.growable!.withMutableBytes { copy(&$0) }
        }
    }

    /// Writes `data` at `offset` of the slot's writable map or view with the typed stores.
    func typedStore(_ slot: Slot, _ data: [UInt8], at offset: Int, bigEndian: Bool) {
        if slot.mutableMap != nil {
            typedStore(&slot.mutableMap!, data, at: offset, bigEndian: bigEndian)
        } else {
            typedStore(&slot.mutableView!, data, at: offset, bigEndian: bigEndian)
        }
    }

    /// Writes `data` at `offset` of `handle` with the typed stores: whole 8-byte values in the
    /// byte order asked, then single bytes.
    func typedStore<H: MutableMmapBytes & ~Copyable>(
        _ handle: inout H,
        _ data: [UInt8],
        at offset: Int,
        bigEndian: Bool
    ) {
        let order: MmapByteOrder = bigEndian ? .bigEndian : .littleEndian
        var index = 0
        while index < data.count {
            if data.count - index >= 8 {
                var value: UInt64 = 0
                for byte in 0..<8 {
                    let shift = bigEndian ? (7 - byte) * 8 : byte * 8
                    value |= UInt64(data[index + byte]) << shift
                }
                handle.store(value, toByteOffset: offset + index, byteOrder: order)
                index += 8
            } else {
                handle.store(data[index], toByteOffset: offset + index, byteOrder: order)
                index += 1
            }
        }
    }

    func writeReserved(_ slot: Slot, _ model: ReservationModel, _ op: ModelOp) throws {
        let limit = model.growableFile != nil ? model.growableCount : model.count
        guard limit > 0 else { return }
        let wanted = range(op.x, op.y % (2 * page), in: limit)
        let (end, _) = writableEnd(model.pages, from: wanted.lowerBound, to: wanted.upperBound)
        let target = wanted.lowerBound..<end
        guard !target.isEmpty else { return }
        let data = writeBytes(target.count, seed: op.z)
        note("write \(data.count) bytes at \(target.lowerBound) of \(slot.name)")
        if slot.reservation != nil {
            // The span API must agree that the range is committed.
            _ = try judge("mutableBytes(in:)", .success) { () throws(MmapError) in
                _ = try reservationMutableCount(&slot.reservation!, target)
            }
        }
        if op.v & 8 != 0 {
            // Every byte of the range is committed and backed: the typed stores may write it.
            note("  through typed stores")
            if slot.reservation != nil {
                typedStore(&slot.reservation!, data, at: target.lowerBound, bigEndian: op.v & 16 != 0)
            } else {
                typedStore(&slot.growable!, data, at: target.lowerBound, bigEndian: op.v & 16 != 0)
            }
            let address = model.address
            try applyWrite(&model.pages, at: target.lowerBound, data) { index in
                shimGuardedRead(address + UInt(index * page), page)
            }
            return
        }
        if slot.growable != nil && op.v & 32 != 0 {
            note("  through withMutableBytes")
            spanStore(slot, data, at: target.lowerBound)
            let address = model.address
            try applyWrite(&model.pages, at: target.lowerBound, data) { index in
                shimGuardedRead(address + UInt(index * page), page)
            }
            return
        }
        let failure =
            slot.reservation != nil
            ? publicGuardedWrite(&slot.reservation!, target.lowerBound, data)
            : publicGuardedWrite(&slot.growable!, target.lowerBound, data)
        if let failure { throw ModelFailure("\(slot.name): write of \(target) failed: \(failure)") }
        let address = model.address
        try applyWrite(&model.pages, at: target.lowerBound, data) { index in
            shimGuardedRead(address + UInt(index * page), page)
        }
    }

    // MARK: - Flushing, advice, locking

    func flush(_ op: ModelOp) throws {
        guard let slot = slots[op.id], let mapping = slot.mapping else { return }
        let count = slot.window.count
        let outside = op.v % 8 == 7
        let flushRange = range(op.x, op.y, in: count, outside: outside)
        let variant = slot.isView ? op.w % 4 : op.w % 5
        let prediction: Prediction = (variant == 2 || variant == 3) && outside ? .failure(.outOfBounds) : .success
        let dataSync = mapping.file.map { files[$0].readWrite }
        note(
            "flush \(["all", "async", "range", "async range", "and fdatasync"][variant]) "
                + "\(variant == 2 || variant == 3 ? "\(flushRange) " : "")of \(slot.name)"
        )
        _ = try judge("flush", prediction) { () throws(MmapError) in
            switch (variant, slot.map != nil, slot.mutableMap != nil, slot.view != nil) {
            case (4, true, _, _): try slot.map!.flush(dataSyncing: dataSync ?? files[0].readWrite)
            case (4, _, true, _): try slot.mutableMap!.flush(dataSyncing: dataSync ?? files[0].readWrite)
            case (0, true, _, _): try slot.map!.flush()
            case (1, true, _, _): try slot.map!.flushAsync()
            case (2, true, _, _): try slot.map!.flush(range: flushRange)
            case (3, true, _, _): try slot.map!.flushAsync(range: flushRange)
            case (0, _, true, _): try slot.mutableMap!.flush()
            case (1, _, true, _): try slot.mutableMap!.flushAsync()
            case (2, _, true, _): try slot.mutableMap!.flush(range: flushRange)
            case (3, _, true, _): try slot.mutableMap!.flushAsync(range: flushRange)
            case (0, _, _, true): try slot.view!.flush()
            case (1, _, _, true): try slot.view!.flushAsync()
            case (2, _, _, true): try slot.view!.flush(range: flushRange)
            case (_, _, _, true): try slot.view!.flushAsync(range: flushRange)
            case (0, _, _, _): try slot.mutableView!.flush()
            case (1, _, _, _): try slot.mutableView!.flushAsync()
            case (2, _, _, _): try slot.mutableView!.flush(range: flushRange)
            default: try slot.mutableView!.flushAsync(range: flushRange)
            }
        }
    }

    /// The advice range of a step in the handle's coordinates (nil: all), and whether it lies
    /// outside the handle.
    func adviceRange(_ op: ModelOp, _ count: Int) -> (Range<Int>?, Bool) {
        if op.w & 1 != 0 { return (nil, false) }
        let outside = op.w & 2 != 0 && op.v % 4 == 3
        return (range(op.y, op.z, in: count, outside: outside), outside)
    }

    /// Marks the mapping as partly advised or locked when `range` (user offsets) does not cover
    /// all of its pages.
    func markSplit(_ mapping: MappingModel, _ range: Range<Int>) {
        guard !range.isEmpty else { return }
        let first = alignDown(mapping.slack + range.lowerBound)
        let end = alignUp(mapping.slack + range.upperBound)
        if first != 0 || end != mapping.mappedLength { mapping.split = true }
    }

    func advise(_ op: ModelOp) throws {
        guard let slot = slots[op.id], let mapping = slot.mapping else { return }
        let advice = MmapAdvice.all[op.x % MmapAdvice.all.count]
        let (adviceRange, outside) = adviceRange(op, slot.window.count)
        note("advise \(advice) \(adviceRange.map { "\($0)" } ?? "all") of \(slot.name)")
        let regionRange = adviceRange.map {
            ($0.lowerBound + slot.window.lowerBound)..<($0.upperBound + slot.window.lowerBound)
        }
        if !outside { markSplit(mapping, regionRange ?? slot.window) }
        _ = try judge("advise", outside ? .failure(.outOfBounds) : .either) { () throws(MmapError) in
            if slot.map != nil {
                try slot.map!.advise(advice, range: adviceRange)
            } else if slot.mutableMap != nil {
                try slot.mutableMap!.advise(advice, range: adviceRange)
            } else if slot.view != nil {
                try slot.view!.advise(advice, range: adviceRange)
            } else {
                try slot.mutableView!.advise(advice, range: adviceRange)
            }
        }
    }

    func adviseDestructively(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.isWritable, let mapping = slot.mapping else { return }
        let advice = MmapDestructiveAdvice.all[op.x % MmapDestructiveAdvice.all.count]
        let (adviceRange, outside) = adviceRange(op, slot.window.count)
        let window = slot.window
        let userRange =
            adviceRange.map { ($0.lowerBound + window.lowerBound)..<($0.upperBound + window.lowerBound) } ?? window
        // The whole pages the library says it affects: inside the range, widened at the
        // mapping's own ends only where the rest of the page is nobody's data (not a shared
        // file mapping, whose partial pages hold file bytes outside the handle).
        let handleStart = mapping.slack + window.lowerBound
        let handleEnd = mapping.slack + window.upperBound
        let sharedFile = mapping.shared && mapping.file != nil
        let endsAreOurs = !sharedFile
        var first = 0
        var end = 0
        if !outside && !userRange.isEmpty && !mapping.isEmpty {
            first = userRange.lowerBound == 0 && endsAreOurs ? 0 : alignUp(mapping.slack + userRange.lowerBound)
            end =
                userRange.upperBound == mapping.count && endsAreOurs
                ? mapping.mappedLength : alignDown(mapping.slack + userRange.upperBound)
        }
        if sharedFile && first < end {
            precondition(first >= handleStart && end <= handleEnd, "model: widened")
        }
        if !outside && advice != .dontNeed && advice != .free { markSplit(mapping, userRange) }
        note(
            "advise \(advice) \(adviceRange.map { "\($0)" } ?? "all") of \(slot.name) (pages \(first / page)..<\(end / page))"
        )
        let ok = try judge("destructive advise", outside ? .failure(.outOfBounds) : .either) { () throws(MmapError) in
            if slot.mutableMap != nil {
                try slot.mutableMap!.advise(advice, range: adviceRange)
            } else {
                try slot.mutableView!.advise(advice, range: adviceRange)
            }
        }
        guard first < end else { return }
        // Refused up front (locked pages, an advice the mapping does not take): nothing changed.
        guard ok else { return }
        for index in (first / page)..<(end / page) {
            switch mapping.pages[index].kind {
            case .anonymous(let shared):
                if advice == .dontNeed && !shared || advice == .remove {
                    mapping.pages[index].content = [UInt8](repeating: 0, count: page)
                } else if advice == .free {
                    mapping.pages[index].content = nil
                }
            case .file(let file, let offset, let shared):
                if !shared {
                    if advice == .dontNeed || advice == .remove || advice == .free {
                        mapping.pages[index].content = nil
                    }
                } else if advice == .remove {
                    // A hole: zeros in the file, but only the handle's own bytes must change.
                    let size = files[file].bytes.count
                    let pageStart = index * page
                    let inside = max(pageStart, handleStart)..<min(pageStart + page, handleEnd)
                    guard !inside.isEmpty else { continue }
                    let fileStart = offset + inside.lowerBound - pageStart
                    let fileEnd = min(size, offset + inside.upperBound - pageStart)
                    guard fileStart < fileEnd else { continue }
                    let fileRange = fileStart..<fileEnd
                    if inside.count == page {
                        files[file].bytes.replaceSubrange(fileRange, with: repeatElement(0, count: fileRange.count))
                    } else {
                        ambiguous.append((file, fileRange, Array(files[file].bytes[fileRange])))
                    }
                }
            case .none:
                break
            }
        }
    }

    /// `populate(range:threads:)`, or `populateForWriting(range:threads:)` on a writable handle,
    /// on 1 to 8 threads. Model semantics: no byte changes (a private file page made private by
    /// a write prefault was already "unknown" to the model). The kernel may refuse (pages past
    /// the end of a truncated file: `fault`; huge pages it cannot supply): any error must leave
    /// the state unchanged, and a successful read prefault leaves every page of the range
    /// resident.
    func populate(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.isDirect, slot.mapping != nil else { return }
        let threads = 1 + op.x % 8
        let forWriting = slot.mutableMap != nil && op.x & 8 != 0
        let (populateRange, outside) = adviceRange(op, slot.window.count)
        note(
            "populate\(forWriting ? "ForWriting" : "") \(populateRange.map { "\($0)" } ?? "all") of \(slot.name) "
                + "on \(threads) threads"
        )
        let ok = try judge("populate", outside ? .failure(.outOfBounds) : .either) { () throws(MmapError) in
            if forWriting {
                try slot.mutableMap!.populateForWriting(range: populateRange, threads: threads)
            } else if slot.map != nil {
                try slot.map!.populate(range: populateRange, threads: threads)
            } else {
                try slot.mutableMap!.populate(range: populateRange, threads: threads)
            }
        }
        guard ok, !forWriting, !(populateRange?.isEmpty ?? false), slot.window.count > 0 else { return }
        let residency: MmapResidency
        do {
            residency =
                try slot.map?.residency(range: populateRange) ?? slot.mutableMap!.residency(range: populateRange)
        } catch {
            return  // mincore may refuse (a range of more than 2^26 pages); populate is judged above
        }
        if !residency.isFullyResident {
            throw ModelFailure(
                "populate succeeded but \(residency.pageCount - residency.residentCount) of its "
                    + "\(residency.pageCount) pages are not resident"
            )
        }
    }

    func lock(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.isDirect, let mapping = slot.mapping else { return }
        let unlock = op.x & 1 != 0
        let (lockRange, outside) = adviceRange(op, mapping.count)
        note("\(unlock ? "unlock" : "lock") \(lockRange.map { "\($0)" } ?? "all") of \(slot.name)")
        if !outside { markSplit(mapping, lockRange ?? 0..<mapping.count) }
        _ = try judge(unlock ? "unlock" : "lock", outside ? .failure(.outOfBounds) : .either) { () throws(MmapError) in
            switch (slot.map != nil, unlock) {
            case (true, false): try slot.map!.lock(range: lockRange)
            case (true, true): try slot.map!.unlock(range: lockRange)
            case (false, false): try slot.mutableMap!.lock(range: lockRange)
            case (false, true): try slot.mutableMap!.unlock(range: lockRange)
            }
        }
    }

    // MARK: - Resizing

    /// The model's side of a successful resize to `count` (the handle already moved or not).
    func resized(_ slot: Slot, _ mapping: MappingModel, to count: Int) throws {
        let pages = alignUp(mapping.slack + count) / page
        if pages < mapping.pages.count {
            let released = mapping.pages.count - pages
            mapping.pages.removeLast(released)
        } else {
            for index in mapping.pages.count..<pages { mapping.pages.append(mapping.freshPage(at: index)) }
        }
        mapping.count = count
        slot.window = 0..<count
        mapping.address = try addressOf(slot) - UInt(mapping.slack)
        checkMapsNow = true
    }

    func newCount(_ raw: Int, _ count: Int) -> Int {
        switch raw % 4 {
        case 0: return 0
        case 1: return 1 + raw / 4 % max(1, count)
        case 2: return count + 1 + raw / 4 % (3 * page)
        default: return max(1, alignUp(count) - raw / 4 % page)
        }
    }

    func remap(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.isDirect, let mapping = slot.mapping else { return }
        let count = newCount(op.x, mapping.count)
        let mayMove = op.w & 1 != 0
        let grows = alignUp(mapping.slack + count) > mapping.mappedLength
        var prediction = Prediction.success
        if count <= 0 || mapping.isEmpty {
            prediction = .failure(.invalidArgument)
        } else if grows && mapping.file == nil && mapping.shared {
            prediction = .failure(.unsupported)  // shared anonymous memory cannot grow
        } else if grows && (!mayMove || mapping.split) {
            // The pages after it may be in use (outOfMemory), or advice or locking on part of
            // the mapping split it in the kernel (unsupported, EFAULT): a clear error, no trap.
            prediction = .either
        }
        note("remap \(slot.name) from \(mapping.count) to \(count) bytes\(mayMove ? ", may move" : "")")
        let ok = try judge("remap", prediction) { () throws(MmapError) in
            if slot.map != nil {
                try slot.map!.remap(count: count, mayMove: mayMove)
            } else {
                try slot.mutableMap!.remap(count: count, mayMove: mayMove)
            }
        }
        if ok { try resized(slot, mapping, to: count) }
    }

    func grow(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.mutableMap != nil, let mapping = slot.mapping else { return }
        let count = op.x % 4 == 0 ? max(0, mapping.count - 1 - op.x / 4 % page) : newCount(op.x | 2, mapping.count)
        let grows = count > mapping.count && !mapping.isEmpty && alignUp(mapping.slack + count) > mapping.mappedLength
        let allocate = op.w & 1 != 0
        let mayMove = op.w & 2 != 0
        let fileIndex = mapping.file ?? op.v % files.count
        let fd = files[fileIndex].readWrite
        let end = mapping.fileOffset + count
        var prediction = Prediction.success
        if mapping.file == nil {
            prediction = .failure(.invalidArgument)  // its writes could never reach the file
        } else if count < mapping.count {
            prediction = .failure(.invalidArgument)
        } else if grows && (!mayMove || mapping.split) {
            prediction = .either
        }
        note(
            "grow \(slot.name) from \(mapping.count) to \(count) bytes with file\(fileIndex)"
                + "\(allocate ? " (fallocate)" : " (ftruncate)")\(mayMove ? ", may move" : "")"
        )
        let ok = try judge("grow", prediction) { () throws(MmapError) in
            try slot.mutableMap!.grow(to: count, fileDescriptor: fd, allocate: allocate, mayMove: mayMove)
        }
        if mapping.file == nil {
            if ok { throw ModelFailure("grow(to:fileDescriptor:) of anonymous memory succeeded") }
            // Refused before the file is touched: the file check after this step proves it.
            return
        }
        guard case .failure = prediction else {
            // The file grows before the mapping does, even when the remap then fails.
            if end > files[fileIndex].bytes.count { resize(file: fileIndex, to: end) }
            guard ok, count > mapping.count else { return }  // growing to the same count changes nothing
            if mapping.isEmpty {
                mapping.descriptorWritable = true  // mapped afresh from the read-write descriptor
                mapping.slack = mapping.fileOffset % page
                mapping.count = count
                mapping.pages = (0..<(alignUp(mapping.slack + count) / page)).map { mapping.freshPage(at: $0) }
                slot.window = 0..<count
                mapping.address = try addressOf(slot) - UInt(mapping.slack)
                checkMapsNow = true
            } else {
                try resized(slot, mapping, to: count)
            }
            return
        }
    }

    // MARK: - Ownership

    func reprotect(_ op: ModelOp) throws {
        guard let slot = slots[op.id], let mapping = slot.mapping else { return }
        if op.kind == .makeReadOnly && slot.map != nil && op.x % 2 == 1 {
            // makeExecutable of a read-only handle: the same pages, readable and executable; a
            // noexec mount refuses (permissionDenied) and the mapping is then unmapped.
            note("makeExecutable \(slot.name)")
            let handle = slot.map.take()!
            do {
                slot.map = try handle.makeExecutable()
            } catch {
                guard error.code == .permissionDenied else { throw ModelFailure("makeExecutable threw \(error)") }
                release(mapping)
                remove(slot.id)
            }
            return
        }
        if op.kind == .makeReadOnly {
            guard slot.mutableMap != nil else { return }
            note("makeReadOnly \(slot.name)")
            let handle = slot.mutableMap.take()!
            var ok = false
            do {
                slot.map = try handle.makeReadOnly()
                ok = true
            } catch {
                throw ModelFailure("makeReadOnly threw \(error)")
            }
            if ok { mapping.writable = false }
        } else {
            guard slot.map != nil else { return }
            let refused = mapping.shared && mapping.file != nil && !mapping.descriptorWritable && !mapping.isEmpty
            note("makeMutable \(slot.name)\(refused ? " (refused: read-only descriptor)" : "")")
            let handle = slot.map.take()!
            do {
                slot.mutableMap = try handle.makeMutable()
                if refused { throw ModelFailure("makeMutable of a shared mapping of a read-only descriptor succeeded") }
                mapping.writable = true
            } catch let error as MmapError {
                guard refused, error.code == .permissionDenied else { throw ModelFailure("makeMutable threw \(error)") }
                // Documented: on failure the mapping is unmapped.
                release(mapping)
                remove(slot.id)
            }
        }
    }

    func share(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.isDirect else { return }
        note("share \(slot.name)")
        if slot.map != nil {
            slot.view = slot.map.take()!.share()
        } else {
            slot.mutableView = slot.mutableMap.take()!.share()
        }
    }

    func split(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.isView, let mapping = slot.mapping else { return }
        let count = slot.window.count
        let at = op.x % (count + 2)
        let newId = op.y
        guard slots[newId] == nil else { return }
        note("split \(slot.name) at \(at) into #\(newId)")
        let other = Slot(id: newId)
        let ok = try judge("split", at > count ? .failure(.outOfBounds) : .success) { () throws(MmapError) in
            if slot.view != nil {
                other.view = try slot.view!.split(at: at)
            } else {
                other.mutableView = try slot.mutableView!.split(at: at)
            }
        }
        guard ok else { return }
        let installed = newSlot(newId)
        installed.view = other.view.take()
        installed.mutableView = other.mutableView.take()
        installed.mapping = mapping
        installed.window = (slot.window.lowerBound + at)..<slot.window.upperBound
        slot.window = slot.window.lowerBound..<(slot.window.lowerBound + at)
        mapping.holders += 1
    }

    func restrict(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.isView else { return }
        let outside = op.v % 4 == 3
        let subrange = range(op.x, op.y, in: slot.window.count, outside: outside)
        note("restrict \(slot.name) to \(subrange)")
        let ok = try judge("restrict", outside ? .failure(.outOfBounds) : .success) { () throws(MmapError) in
            if slot.view != nil {
                try slot.view!.restrict(to: subrange)
            } else {
                try slot.mutableView!.restrict(to: subrange)
            }
        }
        if ok {
            let base = slot.window.lowerBound
            slot.window = (base + subrange.lowerBound)..<(base + subrange.upperBound)
        }
    }

    func drop(_ op: ModelOp) throws {
        guard let slot = slots[op.id] else { return }
        note("drop \(slot.name)")
        if let mapping = slot.mapping { release(mapping) }
        if slot.reserved != nil { checkMapsNow = true }
        if let model = slot.reserved {
            released.append((model.address, model.count))
        }
        remove(slot.id)
    }

    /// Ends a direct handle with `unmap()` (mutating: on success the handle is empty and is
    /// dropped here; on failure it would still own the mapping).
    func unmapDirect(_ slot: Slot) throws(MmapError) {
        if slot.map != nil {
            try slot.map!.unmap()
            slot.map = nil
        } else {
            try slot.mutableMap!.unmap()
            slot.mutableMap = nil
        }
    }

    func unmap(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.isDirect, let mapping = slot.mapping else { return }
        note("unmap \(slot.name)")
        _ = try judge("unmap", .success) { () throws(MmapError) in try unmapDirect(slot) }
        release(mapping)
        remove(slot.id)
    }

    // MARK: - Reservations and growable files

    func reserve(_ op: ModelOp) throws {
        let count = (op.x % 12 + 2) * page - (op.x / 12 % 2 == 1 ? page / 2 : 0)
        note("reserve \(count) bytes as #\(op.id)")
        let slot = Slot(id: op.id)
        _ = try judge("reserve", .success) { () throws(MmapError) in
            slot.reservation = try MmapReservation(count: count)
        }
        let installed = newSlot(op.id)
        installed.reservation = slot.reservation.take()
        installed.reserved = ReservationModel(
            pages: alignUp(count) / page,
            address: reservationBase(installed.reservation!)
        )
        if reservationCount(installed.reservation!) != alignUp(count) {
            throw ModelFailure(
                "reservation count \(reservationCount(installed.reservation!)), expected \(alignUp(count))"
            )
        }
        checkMapsNow = true
    }

    /// A commit or decommit range: pages from raw numbers, perturbed into an invalid one by `perturb`.
    func reservationRange(_ op: ModelOp, _ model: ReservationModel, perturb: Int) -> Range<Int> {
        let pages = model.pages.count
        let first = op.x % pages
        let last = min(pages, first + 1 + op.y % 4)
        switch perturb {
        case 3: return (first * page + 1 + op.z % (page - 1))..<(last * page)
        case 4: return (first * page)..<((pages + 1 + op.y % 2) * page)
        case 5: return (first * page)..<(first * page)
        default: return (first * page)..<(last * page)
        }
    }

    func commit(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.reservation != nil, let model = slot.reserved else { return }
        let source = op.w & 7
        let perturb = (op.w >> 3) % 6
        let commitRange = reservationRange(op, model, perturb: perturb)
        let fileIndex = op.v % files.count
        let fileOffset = (op.z % 4) * page + (source == 7 ? 1 + op.z % 100 : 0)
        var prediction = Prediction.success
        let pages = (commitRange.lowerBound / page)..<(alignUp(commitRange.upperBound) / page)
        if commitRange.upperBound > model.count {
            prediction = .failure(.outOfBounds)
        } else if perturb == 3 || perturb == 5 {
            prediction = .failure(.invalidArgument)
        } else if pages.contains(where: { model.pages[$0].kind != .none }) {
            prediction = .failure(.invalidArgument)
        } else if source == 7 {
            prediction = .failure(.invalidArgument)
        } else if source == 3 {
            prediction = .failure(.permissionDenied)
        } else if source == 5 || source == 6 {
            prediction = .failure(.notMappable)  // refused after fstat, before any page is touched
        }
        let sourceName = [
            "anonymous", "file\(fileIndex) shared", "file\(fileIndex) private", "file\(fileIndex) read-only shared",
            "file\(fileIndex) read-only private", "a pipe", "a socket", "file\(fileIndex) unaligned offset",
        ][source]
        note("commit \(commitRange) of \(slot.name) to \(sourceName)\(source == 0 ? "" : " at \(fileOffset)")")
        let ok = try judge("commit", prediction) { () throws(MmapError) in
            switch source {
            case 0:
                try slot.reservation!.commit(commitRange)
            case 5, 6:
                let fd = source == 5 ? pipeFds.0 : socketFds.0
                try slot.reservation!.commit(commitRange, fileDescriptor: fd, fileOffset: Int64(fileOffset))
            default:
                let readOnly = source == 3 || source == 4
                let fd = readOnly ? files[fileIndex].readOnly : files[fileIndex].readWrite
                let sharing: MmapSharing = source == 2 || source == 4 ? .private : .shared
                try slot.reservation!.commit(
                    commitRange,
                    fileDescriptor: fd,
                    fileOffset: Int64(fileOffset),
                    sharing: sharing
                )
            }
        }
        checkMapsNow = true
        if source == 5 || source == 6 {
            if ok { throw ModelFailure("a commit of a \(source == 5 ? "pipe" : "socket") succeeded") }
            return
        }
        guard ok else { return }
        for index in pages {
            let offsetInRange = index * page - commitRange.lowerBound
            switch source {
            case 0:
                model.pages[index] = PageModel(
                    kind: .anonymous(shared: false),
                    content: [UInt8](repeating: 0, count: page)
                )
            default:
                let shared = source == 1
                model.pages[index] = PageModel(
                    kind: .file(fileIndex, offset: fileOffset + offsetInRange, shared: shared),
                    content: nil
                )
            }
        }
    }

    func decommit(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.reservation != nil, let model = slot.reserved else { return }
        let perturb = (op.w >> 3) % 6
        let decommitRange = reservationRange(op, model, perturb: perturb)
        let pages = (decommitRange.lowerBound / page)..<(alignUp(decommitRange.upperBound) / page)
        var prediction = Prediction.success
        if decommitRange.upperBound > model.count {
            prediction = .failure(.outOfBounds)
        } else if perturb == 3 || perturb == 5 || pages.contains(where: { model.pages[$0].kind == .none }) {
            prediction = .failure(.invalidArgument)
        }
        note("decommit \(decommitRange) of \(slot.name)")
        let ok = try judge("decommit", prediction) { () throws(MmapError) in
            try slot.reservation!.decommit(decommitRange)
        }
        checkMapsNow = true
        guard ok else { return }
        for index in pages { model.pages[index] = PageModel(kind: .none, content: nil) }
    }

    func growable(_ op: ModelOp) throws {
        let fileIndex = op.x % files.count
        let size = files[fileIndex].bytes.count
        let capacity = (op.y % 10 + 1) * page - (op.y / 10 % 3 == 1 ? page / 3 : 0)
        note("MmapGrowableFile of file\(fileIndex) (\(size) bytes) capacity \(capacity) as #\(op.id)")
        let slot = Slot(id: op.id)
        let ok = try judge("growable", size > capacity ? .failure(.invalidArgument) : .success) {
            () throws(MmapError) in
            slot.growable = try MmapGrowableFile(fileDescriptor: files[fileIndex].readWrite, capacity: capacity)
        }
        guard ok else { return }
        let installed = newSlot(op.id)
        installed.growable = slot.growable.take()
        let model = ReservationModel(pages: alignUp(capacity) / page, address: growableBase(installed.growable!))
        model.growableFile = fileIndex
        model.growableCount = size
        for index in 0..<(alignUp(size) / page) {
            model.pages[index] = PageModel(kind: .file(fileIndex, offset: index * page, shared: true), content: nil)
        }
        installed.reserved = model
        checkMapsNow = true
    }

    func growableGrow(_ op: ModelOp) throws {
        guard let slot = slots[op.id], slot.growable != nil, let model = slot.reserved,
            let fileIndex = model.growableFile
        else { return }
        let current = model.growableCount
        let count: Int
        switch op.x % 6 {
        case 0: count = current - 1 - op.x / 6 % page
        case 1: count = model.count + 1
        default: count = current + op.x / 6 % (2 * page + 1)
        }
        let allocate = op.w & 1 != 0
        var prediction = Prediction.success
        if count < current || count > model.count { prediction = .failure(.invalidArgument) }
        note("grow \(slot.name) from \(current) to \(count)\(allocate ? " (fallocate)" : " (ftruncate)")")
        let ok = try judge("growable grow", prediction) { () throws(MmapError) in
            try slot.growable!.grow(to: count, allocate: allocate)
        }
        guard ok else { return }
        if files[fileIndex].bytes.count < count { resize(file: fileIndex, to: count) }
        for index in (alignUp(current) / page)..<(alignUp(count) / page) {
            model.pages[index] = PageModel(kind: .file(fileIndex, offset: index * page, shared: true), content: nil)
        }
        model.growableCount = count
        checkMapsNow = true
    }

    func truncate(_ op: ModelOp) throws {
        let fileIndex = op.x % files.count
        let size = files[fileIndex].bytes.count
        let newSize: Int
        switch op.y % 4 {
        case 0: newSize = 0
        case 1: newSize = op.y / 4 % (5 * page)
        case 2: newSize = max(0, size - 1 - op.y / 4 % (2 * page))
        default: newSize = size + 1 + op.y / 4 % (2 * page)
        }
        note("ftruncate file\(fileIndex) from \(size) to \(newSize) through another descriptor")
        precondition(ftruncate(files[fileIndex].outside, off_t(newSize)) == 0, "ftruncate failed")
        resize(file: fileIndex, to: newSize)
    }
}
