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
/// Learning rate: the step a steady pseudo-gradient gets is lr/(1−μ). Measured here at 15–30
/// rounds it is best near 1.4 (one worker, 30 rounds: 0.7/0.5 beat 1.0/0.5 and 1.3/0; four workers:
/// 0.7/0.5 → 5.5% above DDP, 1.0/0.5 → 6.2%, 1.4/0.5 → 14%; `experiment scaling`'s sweep of
/// 0.67/1/1.5× picked 1× at 2, 4 and 8 workers). Runs long enough for DiLoCo's μ = 0.9 get its
/// lr 0.7 (a step of 7), which is where the published runs found it; in between the step grows
/// with the horizon (0.7·horizon, at least 1.4), so lr stays 0.7 from 30 rounds on. The step does
/// not grow with M here (`workerExponent` 0), unlike the scaling-law paper's long runs.
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
    /// lr/(1−μ) of short runs (a horizon up to 2 rounds).
    public static let shortRunStep = 1.4
    /// DiLoCo's outer lr, which with its μ = 0.9 long runs get.
    public static let longRunLearningRate = 0.7
    /// How the step grows with the number of workers (M^exponent).
    public static let workerExponent = 0.0

    /// The config's settings where it gives them, the rule's otherwise, for `workers` workers and
    /// a run of `rounds` rounds.
    public init(strategy: StrategyConfig, workers: Int, rounds: Int) {
        let horizon = min(Self.longestHorizon, max(1, Double(rounds) / Self.roundsPerHorizon))
        let momentum = strategy.outerMomentum ?? Float(1 - 1 / horizon)
        let step = max(Self.shortRunStep, Self.longRunLearningRate * horizon) * pow(Double(max(1, workers)), Self.workerExponent)
        learningRate = strategy.outerLearningRate ?? Float(step * (1 - Double(momentum)))
        self.momentum = momentum
    }
}
