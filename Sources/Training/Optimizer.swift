import ModelCore
import TensorCore

/// What the trainer steps: an update rule over the flat parameter slab whose state is two slabs
/// of the parameters' layout (checkpoints save them as `m.*` and `v.*`, round memory and state
/// hand-off copy them) and a step count.
public protocol Optimizer: AnyObject {
    /// First state slab (AdamW's first moments; Muon's momentum for the matrices it handles).
    var m: FloatSlab { get }
    /// Second state slab (AdamW's second moments; unused by Muon's matrices).
    var v: FloatSlab { get }
    /// The ranges of `v` that updates use, ascending; the rest of it stays zero.
    var secondMomentRanges: [Range<Int>] { get }
    /// Number of updates applied so far.
    var stepCount: Int { get }
    /// Applies one update; `gradientScale` multiplies every gradient first (clipping).
    func step(parameters: FloatSlab, gradients: FloatSlab, learningRate: Float, gradientScale: Float, parallelism: Parallelism)
    /// Restores the step counter (from a checkpoint).
    func restore(stepCount: Int)
}

extension OptimizerConfig {
    /// The optimizer this config names, with zeroed state, for `layout`.
    public func make(layout: ParameterLayout) -> any Optimizer {
        switch name {
        case .adamw:
            return AdamW(layout: layout, beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
        case .muon:
            return Muon(layout: layout, momentum: muonMomentum, newtonSchulzSteps: newtonSchulzSteps,
                        beta1: beta1, beta2: beta2, epsilon: epsilon, weightDecay: weightDecay)
        }
    }
}
