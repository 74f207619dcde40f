import Foundation
import Training

/// DiLoCo's outer learning rate and Nesterov momentum for a run's shape, where the config leaves
/// them out.
///
/// Momentum: with m ← μ·m + g, a steady pseudo-gradient is amplified by 1/(1−μ) (the momentum's
/// horizon, in rounds), and it takes about that many rounds to build up. DiLoCo's μ = 0.9 (a
/// horizon of 10) was chosen for runs of ~150 and more rounds; a run of 30 rounds never lets it
/// settle, and one worker alone then ends 3.6% worse than plain training. So the horizon is a
/// fixed fraction of the run's rounds, between 1 (no momentum) and DiLoCo's 10.
///
/// Learning rate: the step a steady pseudo-gradient gets is lr/(1−μ), kept at `soloStep` whatever
/// the horizon. The DiLoCo scaling-law paper (arXiv 2503.09799) found the best outer learning rate
/// growing with M at long runs; at this machine's scale it did not: with 4 workers, 30 rounds and
/// μ = 0.5, lr 0.7 / 1.0 / 1.4 ended 5.5% / 6.2% / 14% above DDP, so the step stays M's-independent
/// here (`workerExponent` 0) and `experiment scaling` sweeps a factor around it per M.
public struct OuterSettings: Sendable, Equatable {
    public var learningRate: Float
    public var momentum: Float

    public init(learningRate: Float, momentum: Float) {
        self.learningRate = learningRate
        self.momentum = momentum
    }

    /// Rounds per round of momentum horizon.
    public static let roundsPerHorizon = 15.0
    /// The longest horizon (DiLoCo's μ = 0.9).
    public static let longestHorizon = 10.0
    /// lr/(1−μ) of one worker, and how it grows with the number of workers.
    public static let soloStep = 1.4
    public static let workerExponent = 0.0

    /// The config's settings where it gives them, the rule's otherwise, for `workers` workers and
    /// a run of `rounds` rounds.
    public init(strategy: StrategyConfig, workers: Int, rounds: Int) {
        let horizon = min(Self.longestHorizon, max(1, Double(rounds) / Self.roundsPerHorizon))
        let momentum = strategy.outerMomentum ?? Float(1 - 1 / horizon)
        let step = Self.soloStep * pow(Double(max(1, workers)), Self.workerExponent)
        learningRate = strategy.outerLearningRate ?? Float(step * (1 - Double(momentum)))
        self.momentum = momentum
    }
}
