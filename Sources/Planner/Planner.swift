import Foundation

/// Chooses layouts and predicts how fast they train.
public enum Planner {
    /// Micro-batch sizes the search tries.
    public static let microBatches = [1, 2, 4, 8, 16]

    /// The layout `given` with what it leaves open (micro-batch, recomputation) chosen: the
    /// fastest that fits the device's memory for `training`'s batch, else the one closest to fitting.
    static func completed(_ given: GivenLayout, model: ModelSpec, training: TrainingSpec, site: SiteResources) -> GroupLayout {
        let capacity = site.device.memoryGB * 1e9 * usableMemory
        var best: (layout: GroupLayout, cost: GroupCost)?
        let perReplica = max(1, training.globalBatchSequences / given.dataParallel)
        for b in given.microBatch.map({ [$0] }) ?? microBatches.filter({ $0 <= perReplica }) {
            for r in given.recompute.map({ [$0] }) ?? [false, true] {
                let layout = given.layout(microBatch: b, recompute: r)
                let cost = CostModel.evaluate(model: model, training: training, site: site, layout: layout)
                let fits = cost.memoryBytes <= capacity
                let bestFits = best.map { $0.cost.memoryBytes <= capacity } ?? false
                if best == nil || (fits && !bestFits)
                    || (fits == bestFits && (fits ? cost.stepSeconds < best!.cost.stepSeconds : cost.memoryBytes < best!.cost.memoryBytes)) {
                    best = (layout, cost)
                }
            }
        }
        return best!.layout
    }

    /// Share of a device's memory a plan may use (the rest: framework, fragmentation, buffers).
    public static let usableMemory = 0.9
}
