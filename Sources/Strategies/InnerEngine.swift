import Coordination
import ModelCore
import Training

/// What an engine outside this process did in one round of inner steps.
public struct InnerRound: Sendable, Equatable {
    /// Optimizer steps it took (each on the run's batch: `batchSize` × `sequenceLength` tokens).
    public var steps: Int
    /// Mean training loss over those steps.
    public var meanLoss: Double
    /// Seconds it spent computing them.
    public var computeSeconds: Double

    public init(steps: Int, meanLoss: Double, computeSeconds: Double) {
        self.steps = steps
        self.meanLoss = meanLoss
        self.computeSeconds = computeSeconds
    }
}

/// An engine outside this process (PyTorch beside `tributary worker`, say) that trains the inner steps of
/// DiLoCo rounds on the run's flat parameter layout, while this process does everything else: membership,
/// the ring, codecs, the outer step, validation, checkpoints, reports.
public protocol InnerEngine: AnyObject {
    /// Called once the run's config is known, before joining: refuses a run whose layout or strategy the
    /// engine cannot train (the error says why), else tells the engine the run's shape.
    func begin(layout: ParameterLayout, config: TrainConfig) async throws

    /// Trains round `round` from `parameters`, leaving the trained values in it: `steps` inner steps, or with
    /// `budgetSeconds` as many as fit it (at most `steps`: a step that would overrun it is not taken).
    func trainRound(_ round: Int, steps: Int, budgetSeconds: Double?, parameters: UnsafeMutableBufferPointer<Float>)
        async throws -> InnerRound

    /// The report of a round this worker finished (the engine may show it).
    func roundReported(_ report: WorkerReport)

    /// The run ended: `parameters` are the final shared model.
    func runFinished(_ report: WorkerReport, parameters: UnsafeBufferPointer<Float>) async throws
}

extension StrategyConfig {
    /// Why an engine outside this process cannot take part in a run with this strategy, or nil when it can.
    public var refusalForOtherEngines: String? {
        if name != .diloco {
            return "this run's strategy is \(name.rawValue), which needs gradients every step; "
                + "an engine outside tributary takes part in DiLoCo runs (strategy.name: diloco)"
        }
        if momentSync > 0 {
            return "this run averages the inner optimizer's state (strategy.momentSync: \(momentSync)), "
                + "which an engine outside tributary keeps to itself; use momentSync: 0"
        }
        return nil
    }
}
