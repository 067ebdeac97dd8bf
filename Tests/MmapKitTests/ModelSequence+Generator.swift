import Glibc
import MmapKit

// The generator of the model-based sequence test: weighted random operations on the live handles.
// Shared with the libFuzzer target (Fuzz/), which feeds it the fuzzer's bytes instead of a seed.

/// Chooses the next step from the live handles, weighted towards the interesting operations.
struct ModelGenerator {
    var random: ModelRandom

    private static let weights: [(ModelOp.Kind, Int)] = [
        (.mapFile, 6), (.mapAnonymous, 3), (.write, 20), (.flush, 4), (.advise, 8), (.adviseDestructively, 8),
        (.lock, 4), (.remap, 6), (.grow, 4), (.makeReadOnly, 2), (.makeMutable, 2), (.share, 3), (.split, 4),
        (.restrict, 2), (.drop, 3), (.unmap, 3), (.reserve, 1), (.commit, 6), (.decommit, 3), (.growable, 1),
        (.growableGrow, 3), (.truncate, 3), (.populate, 4),
    ]
    private static let totalWeight = weights.reduce(0) { $0 + $1.1 }

    mutating func next(_ runner: ModelRunner) -> ModelOp {
        let live = runner.order.compactMap { runner.slots[$0] }
        var kind = ModelOp.Kind.mapFile
        var pick = random.below(Self.totalWeight)
        for (candidate, weight) in Self.weights {
            if pick < weight {
                kind = candidate
                break
            }
            pick -= weight
        }
        let creating: Set<ModelOp.Kind> = [.mapFile, .mapAnonymous, .reserve, .growable]
        if live.count >= 10 && creating.contains(kind) { kind = random.chance(50) ? .drop : .unmap }
        if live.count < 2 { kind = [.mapFile, .mapFile, .mapAnonymous, .reserve, .growable][random.below(5)] }
        if kind == .truncate || runner.files.contains(where: { $0.bytes.count > 20 * modelPage }) && random.chance(5) {
            return ModelOp(.truncate, x: random.raw(), y: random.raw())
        }
        let targets: [Slot]
        switch kind {
        case .mapFile, .mapAnonymous, .reserve, .growable:
            return ModelOp(
                kind,
                id: runner.nextId,
                x: random.raw(),
                y: random.raw(),
                z: random.raw(),
                w: random.raw(),
                v: random.raw()
            )
        case .write: targets = live.filter { $0.isWritable || $0.reserved != nil }
        case .flush, .advise: targets = live.filter { $0.mapping != nil }
        case .adviseDestructively: targets = live.filter { $0.isWritable }
        case .lock, .remap, .unmap, .share, .populate: targets = live.filter { $0.isDirect }
        case .grow, .makeReadOnly: targets = live.filter { $0.mutableMap != nil }
        case .makeMutable: targets = live.filter { $0.map != nil }
        case .split, .restrict: targets = live.filter { $0.isView }
        case .drop: targets = live
        case .commit, .decommit: targets = live.filter { $0.reservation != nil }
        case .growableGrow: targets = live.filter { $0.growable != nil }
        case .truncate: targets = []
        }
        guard !targets.isEmpty else {
            return ModelOp(
                .mapFile,
                id: runner.nextId,
                x: random.raw(),
                y: random.raw(),
                z: random.raw(),
                w: random.raw()
            )
        }
        let target = targets[random.below(targets.count)]
        return ModelOp(
            kind,
            id: target.id,
            x: random.raw(),
            y: kind == .split ? runner.nextId : random.raw(),
            z: random.raw(),
            w: random.raw(),
            v: random.raw()
        )
    }
}
