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
/// Learning rate: the step a steady pseudo-gradient gets is lr/(1−μ). With no momentum (runs of up
/// to 15 rounds) it is the outer lr itself, and 1 — the mean of the workers' progress, which for one
/// worker is plain training — measured best at 15 rounds: one worker, Muon inside, 0.94 ended 0.4%
/// behind plain training on average over three seeds (−0.02, +0.36, +0.87%) and 1.4 1.3% behind;
/// at 2–8 workers 0.94 beat 1.4 or tied it (`experiment scaling`, sessions 16–17); four workers
/// with Muon at a batch of 32: 0.8/0.94/1/1.25 → 5.483/5.472/5.467/5.468 (session 18). At 30 rounds
/// (μ = 0.5) it was best near 1.4 (one worker: 0.7/0.5 beat 1.0/0.5 and 1.3/0; four workers: 0.7/0.5
/// → 5.5% above DDP, 1.0/0.5 → 6.2%, 1.4/0.5 → 14%). So the step is 0.7·horizon, at least 1: runs
/// long enough for DiLoCo's μ = 0.9 get its lr 0.7 (a step of 7), where the published runs found it,
/// and lr stays 0.7 from 30 rounds on. The step does not grow with M here (`workerExponent` 0),
/// unlike the scaling-law paper's long runs.
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
    /// lr/(1−μ) of the shortest runs (no momentum): plain averaging of the workers' progress.
    public static let shortestRunStep = 1.0
    /// DiLoCo's outer lr, which with its μ = 0.9 long runs get.
    public static let longRunLearningRate = 0.7
    /// How the step grows with the number of workers (M^exponent).
    public static let workerExponent = 0.0

    /// The config's settings where it gives them, the rule's otherwise, for `workers` workers and
    /// a run of `rounds` rounds.
    public init(strategy: StrategyConfig, workers: Int, rounds: Int) {
        let horizon = min(Self.longestHorizon, max(1, Double(rounds) / Self.roundsPerHorizon))
        let momentum = strategy.outerMomentum ?? Float(1 - 1 / horizon)
        let step = max(Self.shortestRunStep, Self.longRunLearningRate * horizon) * pow(Double(max(1, workers)), Self.workerExponent)
        learningRate = strategy.outerLearningRate ?? Float(step * (1 - Double(momentum)))
        self.momentum = momentum
    }
}
