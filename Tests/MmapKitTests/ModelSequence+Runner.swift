import Glibc
import MmapKit

// Runs operations against MmapKit and the reference model side by side, and checks after every
// step that the library, the files and the address space agree with the model.

// swift-format-ignore: AllPublicDeclarationsHaveDocumentation
final class ModelRunner {
    let page = modelPage
    var files: [FileModel] = []
    var slots: [Int: Slot] = [:]
    var order: [Int] = []  // live slot ids in creation order (deterministic iteration)
    var nextId = 1
    let baseline: Int
    var step = 0
    /// Set by structural operations: check /proc/self/maps after this step.
    var checkMapsNow = false
    /// Address ranges unmapped by this step, which must no longer be mapped.
    var released: [(UInt, Int)] = []
    /// File ranges a destructive advice may or may not have zeroed: (file, range, old bytes).
    var ambiguous: [(Int, Range<Int>, [UInt8])] = []
    let pipeFds: (CInt, CInt)
    let socketFds: (CInt, CInt)
    var tracing = false
    var lastNote = ""
    var noteEmitted = false
    /// Where a tracing run sends each step's description (before the step runs, so a crash keeps it).
    var emit: ((String) -> Void)? = nil

    init(seed: UInt64, directory: String) {
        baseline = _MmapDiagnostics.liveMappings
        var random = ModelRandom(seed: seed ^ 0x5EED)
        for index in 0..<2 {
            let path = "\(directory)/file\(index)"
            let size = random.below(4 * modelPage + 1)
            let bytes = writeBytes(size, seed: random.raw())
            let rw = unsafe open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0o644)
            precondition(rw >= 0, "cannot create \(path)")
            precondition(unsafe bytes.withUnsafeBytes { unsafe pwrite(rw, $0.baseAddress, size, 0) } == size)
            let ro = unsafe open(path, O_RDONLY | O_CLOEXEC)
            let outside = unsafe open(path, O_RDWR | O_CLOEXEC)
            precondition(ro >= 0 && outside >= 0)
            files.append(FileModel(bytes: bytes, path: path, readWrite: rw, readOnly: ro, outside: outside))
        }
        var p: [CInt] = [0, 0]
        precondition(unsafe pipe(&p) == 0)
        pipeFds = (p[0], p[1])
        var s: [CInt] = [0, 0]
        precondition(unsafe socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &s) == 0)
        socketFds = (s[0], s[1])
    }

    /// Ends every handle (so the child process ends with nothing live) and closes descriptors.
    func finish() {
        for id in order { slots[id] = nil }
        order = []
        for file in files {
            close(file.readWrite)
            close(file.readOnly)
            close(file.outside)
        }
        close(pipeFds.0)
        close(pipeFds.1)
        close(socketFds.0)
        close(socketFds.1)
    }

    func note(_ text: @autoclosure () -> String) {
        if tracing { lastNote = text() }
    }

    // MARK: - Slots

    func newSlot(_ id: Int) -> Slot {
        let slot = Slot(id: id)
        if slots[id] != nil { remove(id) }
        slots[id] = slot
        order.append(id)
        nextId = max(nextId, id + 1)
        return slot
    }

    func remove(_ id: Int) {
        slots[id] = nil
        order.removeAll { $0 == id }
    }

    /// The model's side of ending a handle of a mapping.
    func release(_ mapping: MappingModel) {
        mapping.holders -= 1
        if mapping.holders == 0 && !mapping.isEmpty {
            released.append((mapping.address, mapping.mappedLength))
            checkMapsNow = true
        }
    }

    var modelLiveMappings: Int {
        var mappings: [ObjectIdentifier: Bool] = [:]
        var count = 0
        for id in order {
            guard let slot = slots[id] else { continue }
            if let mapping = slot.mapping, !mapping.isEmpty { mappings[ObjectIdentifier(mapping)] = true }
            if slot.reserved != nil { count += 1 }
        }
        return count + mappings.count
    }

    // MARK: - Expectations

    func expectation(_ page: PageModel) -> PageExpectation {
        switch page.kind {
        case .none:
            return .inaccessible
        case .anonymous:
            return page.content.map { .known($0[...]) } ?? .unknown
        case .file(let file, let offset, let shared):
            let bytes = files[file].bytes
            if offset >= bytes.count { return .fault }
            if shared { return .known(bytes[offset..<min(offset + modelPage, bytes.count)]) }
            return page.content.map { .known($0[...]) } ?? .unknown
        }
    }

    /// Checks `actual`, the bytes at region offsets `range` (inside one page `index`).
    func compare(
        _ actual: ArraySlice<UInt8>,
        _ expected: PageExpectation,
        pageStart: Int,
        range: Range<Int>,
        what: String
    ) throws {
        guard case .known(let known) = expected else { return }
        let knownEnd = pageStart + known.count
        let upper = min(range.upperBound, knownEnd)
        guard upper > range.lowerBound else { return }
        let want = known[(known.startIndex + range.lowerBound - pageStart)..<(known.startIndex + upper - pageStart)]
        let got = actual[actual.startIndex..<(actual.startIndex + upper - range.lowerBound)]
        if let index = firstDifference(got, want) {
            throw ModelFailure(
                "\(what) reads \(got[got.startIndex + index]) at region offset \(range.lowerBound + index), "
                    + "the model says \(want[want.startIndex + index])"
            )
        }
    }

    /// Checks the handle-relative bytes `0..<count` of a map or view through its guarded reads.
    func checkHandle(_ slot: Slot) throws {
        guard let mapping = slot.mapping else { return }
        let window = slot.window
        guard !window.isEmpty else { return }
        let regionStart = mapping.slack + window.lowerBound
        let regionEnd = mapping.slack + window.upperBound
        var segments: [(Range<Int>, PageExpectation, Int)] = []  // region range, expectation, page start
        var anyFault = false
        var position = regionStart
        while position < regionEnd {
            let index = position / page
            let end = min(regionEnd, (index + 1) * page)
            let expected = expectation(mapping.pages[index])
            if case .fault = expected { anyFault = true }
            segments.append((position..<end, expected, index * page))
            position = end
        }
        if !anyFault {
            let all: [UInt8]
            do {
                all = try guardedRead(slot, 0..<window.count)
            } catch {
                throw ModelFailure("\(slot.name): a guarded read of all \(window.count) bytes failed: \(error)")
            }
            for (range, expected, start) in segments {
                let slice = all[(range.lowerBound - regionStart)..<(range.upperBound - regionStart)]
                try compare(slice, expected, pageStart: start, range: range, what: slot.name)
            }
            try checkTypedLoads(slot, all)
            return
        }
        for (range, expected, start) in segments {
            let handleRange = (range.lowerBound - regionStart)..<(range.upperBound - regionStart)
            do {
                let bytes = try guardedRead(slot, handleRange)
                if case .fault = expected {
                    throw ModelFailure("\(slot.name): bytes \(handleRange) read, the model says past the end of file")
                }
                try compare(bytes[...], expected, pageStart: start, range: range, what: slot.name)
            } catch let error as MmapError {
                guard case .fault = expected, error.code == .fault else {
                    throw ModelFailure("\(slot.name): guarded read of \(handleRange) failed: \(error)")
                }
                // The offset of the faulting access: inside the first lost page of the range, not
                // necessarily its first byte (memcpy may load the end of a short copy first).
                let pageEnd = alignUp(range.lowerBound + 1) - regionStart
                guard let offset = error.faultOffset, offset >= handleRange.lowerBound, offset < pageEnd else {
                    throw ModelFailure(
                        "\(slot.name): fault offset \(String(describing: error.faultOffset)) is not in \(handleRange)"
                    )
                }
            }
        }
    }

    /// Every byte of the handle is readable (a guarded read of all of it just succeeded): its
    /// typed loads and typed spans must read what the guarded read did.
    func checkTypedLoads(_ slot: Slot, _ all: [UInt8]) throws {
        func load(_ offset: Int, _ order: MmapByteOrder) -> UInt64 {
            if slot.map != nil { return slot.map!.load(fromByteOffset: offset, as: UInt64.self, byteOrder: order) }
            if slot.mutableMap != nil {
                return slot.mutableMap!.load(fromByteOffset: offset, as: UInt64.self, byteOrder: order)
            }
            if slot.view != nil { return slot.view!.load(fromByteOffset: offset, as: UInt64.self, byteOrder: order) }
            return slot.mutableView!.load(fromByteOffset: offset, as: UInt64.self, byteOrder: order)
        }
        for offset in Set([0, all.count / 3, all.count - 8]) where offset >= 0 && offset + 8 <= all.count {
            var bigEndian: UInt64 = 0
            for byte in 0..<8 { bigEndian = bigEndian << 8 | UInt64(all[offset + byte]) }
            let big = load(offset, .bigEndian)
            let little = load(offset, .littleEndian)
            guard big == bigEndian, little == bigEndian.byteSwapped else {
                throw ModelFailure(
                    "\(slot.name): typed loads at \(offset) read \(big)/\(little), the bytes say \(bigEndian)"
                )
            }
        }
        // The typed span of single bytes is the whole handle.
        let spanned: [UInt8]
        if slot.map != nil {
            spanned = typedSpanBytes(slot.map!)
        } else if slot.mutableMap != nil {
            spanned = typedSpanBytes(slot.mutableMap!)
        } else if slot.view != nil {
            spanned = typedSpanBytes(slot.view!)
        } else {
            spanned = typedSpanBytes(slot.mutableView!)
        }
        guard spanned == all else { throw ModelFailure("\(slot.name): its typed span differs from its guarded read") }
        // So is the span that withBytes lends.
        let lent: [UInt8]
        if slot.map != nil {
            lent = slot.map!.withBytes { spanBytes($0) }
        } else if slot.mutableMap != nil {
            lent = slot.mutableMap!.withBytes { spanBytes($0) }
        } else if slot.view != nil {
            lent = slot.view!.withBytes { spanBytes($0) }
        } else {
            lent = slot.mutableView!.withBytes { spanBytes($0) }
        }
        guard lent == all else {
            throw ModelFailure("\(slot.name): the span withBytes lends differs from its guarded read")
        }
    }

    /// The bytes of a lent span, copied in one piece. (Not `array(_:)`: that helper lives in the
    /// tests' Support.swift, which the fuzz target does not compile. Not an element-by-element
    /// copy either: under AddressSanitizer that made the model test 4x slower.)
    func spanBytes(_ bytes: RawSpan) -> [UInt8] {
        unsafe bytes.withUnsafeBytes { unsafe Array($0) }
    }

    func typedSpanBytes<A: MmapAccess>(_ map: borrowing MmapHandle<A>) -> [UInt8] {
        let span = map.bytes.span(of: UInt8.self)
        return span.indices.map { span[$0] }
    }

    func typedSpanBytes<A: MmapAccess>(_ view: borrowing MmapViewHandle<A>) -> [UInt8] {
        let span = view.bytes.span(of: UInt8.self)
        return span.indices.map { span[$0] }
    }

    func guardedRead(_ slot: Slot, _ range: Range<Int>) throws(MmapError) -> [UInt8] {
        if slot.map != nil { return try slot.map!.guardedBytes(range) }
        if slot.mutableMap != nil { return try slot.mutableMap!.guardedBytes(range) }
        if slot.view != nil { return try slot.view!.guardedBytes(range) }
        return try slot.mutableView!.guardedBytes(range)
    }

    /// Checks the committed pages of a reservation or growable file through their public guarded
    /// reads (an uncommitted page of a reservation must be refused as out of bounds before
    /// anything is read), and the reservation's own bookkeeping.
    func checkReserved(_ slot: Slot) throws {
        guard let model = slot.reserved else { return }
        let address: UInt
        if slot.reservation != nil {
            address = reservationBase(slot.reservation!)
            var modelCommitted = Set<Int>()
            for (index, page) in model.pages.enumerated() where page.kind != .none { modelCommitted.insert(index) }
            var actual = Set<Int>()
            for range in reservationCommitted(slot.reservation!) {
                for index in (range.lowerBound / page)..<(range.upperBound / page) { actual.insert(index) }
            }
            if actual != modelCommitted {
                throw ModelFailure(
                    "\(slot.name): committed pages \(actual.sorted()), the model says \(modelCommitted.sorted())"
                )
            }
        } else {
            address = growableBase(slot.growable!)
            if growableCount(slot.growable!) != model.growableCount {
                throw ModelFailure("\(slot.name): count \(growableCount(slot.growable!)), model \(model.growableCount)")
            }
        }
        if address != model.address { throw ModelFailure("\(slot.name): the base address moved") }
        if slot.growable != nil, slot.growable!.withBytes({ $0.byteCount }) != model.growableCount {
            throw ModelFailure("\(slot.name): withBytes lends \(slot.growable!.withBytes { $0.byteCount }) bytes")
        }
        let limit = model.growableFile != nil ? model.growableCount : model.count
        for (index, pageModel) in model.pages.enumerated() where index * page < limit {
            let expected = expectation(pageModel)
            let length = min(page, limit - index * page)
            switch expected {
            case .inaccessible:
                guard slot.reservation != nil else { continue }
                switch publicGuardedRead(slot.reservation!, index * page, length) {
                case .failure(let error) where error.code == .outOfBounds:
                    continue
                case let outcome:
                    throw ModelFailure("\(slot.name): uncommitted page \(index) gave \(outcome), not outOfBounds")
                }
            case .fault:
                switch readReserved(slot, index * page, length) {
                case .failure(let error) where error.code == .fault && error.faultOffset == index * page:
                    continue
                case let outcome:
                    throw ModelFailure(
                        "\(slot.name): page \(index) gave \(outcome), the model says past the end of file"
                    )
                }
            case .known, .unknown:
                switch readReserved(slot, index * page, length) {
                case .success(let bytes):
                    try compare(
                        bytes[...],
                        expected,
                        pageStart: index * page,
                        range: (index * page)..<(index * page + length),
                        what: "\(slot.name) page \(index)"
                    )
                case .failure(let failure):
                    throw ModelFailure("\(slot.name): page \(index): \(failure)")
                }
            }
        }
    }

    /// A guarded read of the reservation or growable file of `slot`.
    func readReserved(_ slot: Slot, _ offset: Int, _ length: Int) -> Result<[UInt8], MmapError> {
        slot.reservation != nil
            ? publicGuardedRead(slot.reservation!, offset, length) : publicGuardedRead(slot.growable!, offset, length)
    }

    // MARK: - Checks after every step

    /// The checks after a step: the files, the counter, the handles in `only` (all when nil), and
    /// /proc/self/maps when `fullMaps` or the step changed the address space.
    func checkAll(fullMaps: Bool, only: Set<Int>? = nil) throws {
        for (index, file) in files.enumerated() {
            let actual = preadAll(file.outside)
            if actual.count != file.bytes.count {
                throw ModelFailure("file\(index) has \(actual.count) bytes, the model says \(file.bytes.count)")
            }
            if let at = firstDifference(actual[...], file.bytes[...]) {
                throw ModelFailure(
                    "file\(index) byte \(at) is \(actual[at]), the model says \(file.bytes[at]) "
                        + "(a byte changed that no write through a shared mapping explains)"
                )
            }
        }
        let live = _MmapDiagnostics.liveMappings - baseline
        if live != modelLiveMappings {
            throw ModelFailure("liveMappings is \(live), the model counts \(modelLiveMappings)")
        }
        for id in order {
            guard let slot = slots[id], only?.contains(id) ?? true else { continue }
            if slot.reserved != nil {
                try checkReserved(slot)
                continue
            }
            if let mapping = slot.mapping, slot.isDirect {
                let start = try addressOf(slot)
                if start != (mapping.isEmpty ? 0 : mapping.address + UInt(mapping.slack)) {
                    throw ModelFailure("\(slot.name) is at \(start), the model says \(mapping.address)+slack")
                }
                let count = slot.map != nil ? handleCount(slot.map!) : handleCount(slot.mutableMap!)
                if count != mapping.count { throw ModelFailure("\(slot.name).count \(count) != \(mapping.count)") }
            }
            try checkHandle(slot)
        }
        if fullMaps || checkMapsNow { try checkMaps() }
        checkMapsNow = false
        released = []
    }

    func addressOf(_ slot: Slot) throws -> UInt {
        if slot.map != nil { return startAddress(slot.map!) }
        return startAddress(slot.mutableMap!)
    }

    /// Every live mapping's pages are mapped with the model's permissions; released ranges are gone.
    func checkMaps() throws {
        let entries = readProcMaps()
        var seen: [ObjectIdentifier: Bool] = [:]
        for id in order {
            guard let slot = slots[id] else { continue }
            if let mapping = slot.mapping, !mapping.isEmpty, seen[ObjectIdentifier(mapping)] == nil {
                seen[ObjectIdentifier(mapping)] = true
                for index in 0..<mapping.pages.count {
                    let address = mapping.address + UInt(index * page)
                    guard let permissions = permissions(at: address, in: entries) else {
                        throw ModelFailure("\(slot.name): page \(index) at \(address) is not in /proc/self/maps")
                    }
                    let want = mapping.writable ? "rw" : "r-"
                    if !permissions.hasPrefix(want) {
                        throw ModelFailure("\(slot.name): page \(index) is \(permissions), the model says \(want)")
                    }
                }
            }
            if let model = slot.reserved {
                for (index, pageModel) in model.pages.enumerated() {
                    let address = model.address + UInt(index * page)
                    guard let permissions = permissions(at: address, in: entries) else {
                        throw ModelFailure(
                            "\(slot.name): page \(index) is not mapped at all (a hole in the reservation)"
                        )
                    }
                    let want = pageModel.kind == .none ? "---" : "rw-"
                    if !permissions.hasPrefix(want) {
                        throw ModelFailure("\(slot.name): page \(index) is \(permissions), the model says \(want)")
                    }
                }
            }
        }
        for (address, length) in released {
            for offset in stride(from: 0, to: length, by: page) {
                if let permissions = permissions(at: address + UInt(offset), in: entries) {
                    throw ModelFailure(
                        "the released range at \(address) is still mapped (\(permissions)) at +\(offset)"
                    )
                }
            }
        }
    }

    // MARK: - Model updates shared by several operations

    /// Every page model in the run, for changes that reach all mappings of a file.
    func forEachPage(_ body: (inout PageModel) -> Void) {
        var seen: [ObjectIdentifier: Bool] = [:]
        for id in order {
            guard let slot = slots[id] else { continue }
            if let mapping = slot.mapping, seen[ObjectIdentifier(mapping)] == nil {
                seen[ObjectIdentifier(mapping)] = true
                for index in mapping.pages.indices { body(&mapping.pages[index]) }
            }
            if let model = slot.reserved {
                for index in model.pages.indices { body(&model.pages[index]) }
            }
        }
    }

    /// The file changed size to `size` (truncation or growth).
    func resize(file: Int, to size: Int) {
        let old = files[file].bytes.count
        if size < old {
            files[file].bytes.removeLast(old - size)
            // Truncation discards even private copies of pages wholly past the new end
            // (truncate_pagecache: unmap_mapping_range(..., even_cows = 1)).
            let holeStart = alignUp(size)
            forEachPage { page in
                if case .file(file, let offset, shared: false) = page.kind, offset >= holeStart {
                    page.content = nil
                }
            }
        } else if size > old {
            files[file].bytes += [UInt8](repeating: 0, count: size - old)
        }
    }

    func resolveAmbiguous() throws {
        for (file, range, old) in ambiguous {
            let actual = preadAll(files[file].outside)
            let upper = min(range.upperBound, actual.count)
            guard upper > range.lowerBound else { continue }
            let now = Array(actual[range.lowerBound..<upper])
            let before = Array(old[0..<(upper - range.lowerBound)])
            if now != before && now.contains(where: { $0 != 0 }) {
                throw ModelFailure("file\(file) bytes \(range) are neither unchanged nor zeroed")
            }
            files[file].bytes.replaceSubrange(range.lowerBound..<upper, with: now)
        }
        ambiguous = []
    }
}
