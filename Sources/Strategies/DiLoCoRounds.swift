/// How long a DiLoCo round lasts and how much each worker's progress weighs in it.
///
/// With fixed rounds every worker takes `innerSteps` steps and weighs 1/n. With time rounds a
/// round is a compute budget (`innerSteps` steps of the fastest worker), so slow workers take
/// fewer steps, and each worker's progress weighs by the tokens it took. The total is known only
/// after the all-reduce, so a round's progress is scaled by the last round's total (`guess`) and
/// corrected once the sum is in: that keeps the error-feedback residual in stable units. The
/// guess must be the same on every worker (each corrects the same sum by it): before any total
/// is known it is what a round of `innerSteps` steps on every worker would take.
/// Each worker's tokens and mean step time travel exactly (fp32) after the progress in the same
/// all-reduce (`tail`), so every worker derives the same budget and weights.
public struct DiLoCoRounds: Sendable, Equatable {
    public let innerSteps: Int
    public let workers: Int
    public let timed: Bool
    /// Tokens of one inner step of one worker.
    public let tokensPerStep: Int
    /// Compute seconds a round may take; nil with fixed rounds and before the first step.
    public private(set) var budgetSeconds: Double?
    /// Tokens all workers took in the last round.
    public private(set) var previousTotalTokens: Int?
    /// Tokens each worker took in the last round, in ring order (for validation shares).
    public private(set) var lastWork: [Float]?
    /// Compute seconds this worker's rounds fell short of their budgets so far (its own, not shared):
    /// a worker whose steps do not divide the budget would otherwise stop up to a step early every
    /// round and wait for the others; carried, its rounds average the budget.
    public private(set) var carrySeconds = 0.0

    public init(innerSteps: Int, workers: Int, timed: Bool, tokensPerStep: Int, saved: StrategyState? = nil) {
        self.innerSteps = innerSteps
        self.workers = workers
        self.timed = timed
        self.tokensPerStep = tokensPerStep
        budgetSeconds = saved?.roundBudgetSeconds
        previousTotalTokens = saved?.previousTotalTokens
        carrySeconds = saved?.roundCarrySeconds ?? 0
    }

    /// Values after the progress in the all-reduced message: every worker's tokens, then its
    /// mean step seconds.
    public var tailCount: Int { timed ? 2 * workers : 0 }

    /// Whether the first budget still has to come from everyone's first step.
    public var needsFirstBudget: Bool { timed && budgetSeconds == nil }

    /// Sets the first round's budget from the fastest worker's first step (a value every worker
    /// received from the others: an impossible one is refused).
    public mutating func setFirstBudget(fastestStepSeconds: Double) throws {
        guard fastestStepSeconds.isFinite, fastestStepSeconds > 0 else {
            throw StrategyError.badPeerValues("the fastest first step took \(fastestStepSeconds) s")
        }
        budgetSeconds = Double(innerSteps) * fastestStepSeconds
    }

    /// This worker's budget for the next round: the shared one plus what its earlier rounds left unused.
    public var ownBudgetSeconds: Double? { budgetSeconds.map { $0 + carrySeconds } }

    /// Whether a round that has taken `steps` inner steps in `computeSeconds` is over: once one
    /// more step would overrun this worker's round budget, or after `fixedSteps` without one.
    public func isOver(steps: Int, computeSeconds: Double, fixedSteps: Int) -> Bool {
        if let budget = ownBudgetSeconds { return computeSeconds + computeSeconds / Double(steps) > budget }
        return steps == fixedSteps
    }

    /// Ends a round that computed `computeSeconds`: what it left of its budget (or overran) carries
    /// into the next, bounded by one budget either way.
    public mutating func endRound(computeSeconds: Double) {
        guard let budget = ownBudgetSeconds, let shared = budgetSeconds else { return }
        carrySeconds = min(max(budget - computeSeconds, -shared), shared)
    }

    /// The divisor this round's progress is scaled by before the sum (`guess`) and the weight
    /// of this worker's progress.
    public func weight(roundTokens: Int) -> (guess: Float, weight: Float) {
        let guess = Float(previousTotalTokens ?? innerSteps * tokensPerStep * workers)
        return (guess, timed ? Float(roundTokens) / guess : 1 / Float(workers))
    }

    /// Writes this worker's slot of the exact tail (the others stay zero for the sum).
    public func fillTail(_ tail: UnsafeMutableBufferPointer<Float>, rank: Int, roundTokens: Int, meanStepSeconds: Double) {
        precondition(tail.count == tailCount, "[DiLoCoRounds] tail of \(tail.count) values, expected \(tailCount)")
        guard timed else { return }
        for i in tail.indices { tail[i] = 0 }
        tail[rank] = Float(roundTokens)
        tail[workers + rank] = Float(meanStepSeconds)
    }

    /// Reads the summed tail: the next budget and total. Returns the factor that turns the
    /// progress scaled by `guess` into the exact token-weighted mean (1 with fixed rounds).
    public mutating func absorb(tail: UnsafeBufferPointer<Float>, guess: Float) throws -> Float {
        guard timed else { return 1 }
        precondition(tail.count == tailCount, "[DiLoCoRounds] tail of \(tail.count) values, expected \(tailCount)")
        let tokens = tail[..<workers], seconds = tail[workers...]
        let total = tokens.reduce(0, +)
        let fastest = seconds.min()!
        guard total.isFinite, total > 0, tokens.allSatisfy({ $0 >= 0 }), fastest.isFinite, fastest > 0 else {
            throw StrategyError.badPeerValues("round tokens \(Array(tokens)) and step seconds \(Array(seconds))")
        }
        previousTotalTokens = Int(total)
        lastWork = Array(tokens)
        // The next round lasts `innerSteps` steps of the fastest worker.
        budgetSeconds = Double(innerSteps) * Double(fastest)
        return guess / total
    }
}
