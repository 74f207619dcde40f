import Foundation

/// Chooses layouts and predicts how fast they train.
public enum Planner {
    /// Micro-batch sizes the search tries.
    public static let microBatches = [1, 2, 4, 8, 16]

    /// The fastest micro-batch for a fixed TP/PP/DP split that fits the device's memory, with
    /// its cost; nil when none fits.
    public static func bestMicroBatch(model: ModelSpec, training: TrainingSpec, site: SiteResources, tensorParallel: Int,
                                      pipelineStages: Int, dataParallel: Int, recompute: Bool, zeroStage: Int = 0)
        -> (GroupLayout, GroupCost)? {
        var best: (GroupLayout, GroupCost)?
        let perReplica = max(1, training.globalBatchSequences / dataParallel)
        for b in microBatches where b <= perReplica {
            let layout = GroupLayout(tensorParallel: tensorParallel, pipelineStages: pipelineStages, dataParallel: dataParallel,
                                     microBatch: b, recompute: recompute, zeroStage: zeroStage)
            let cost = CostModel.evaluate(model: model, training: training, site: site, layout: layout)
            guard cost.memoryBytes <= site.device.memoryGB * 1e9 * usableMemory else { continue }
            if best == nil || cost.stepSeconds < best!.1.stepSeconds { best = (layout, cost) }
        }
        return best
    }

    /// Share of a device's memory a plan may use (the rest: framework, fragmentation, buffers).
    public static let usableMemory = 0.9
}
