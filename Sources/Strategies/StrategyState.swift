import Basics
import Foundation
import Training

/// What a strategy keeps between rounds, beyond the trainer's own state: saved in round memory
/// and checkpoints, and agreed on when a run resumes. One type for DDP and DiLoCo; the fields a
/// strategy does not use stay nil.
public struct StrategyState: Codable, Sendable, Equatable {
    /// Steps (DDP) or rounds (DiLoCo) completed.
    public var progress: Int
    /// DDP with time rounds: the sequences each worker takes in the next step, in ring order.
    public var ddpSequences: [Int]?
    /// DiLoCo with time rounds: tokens all workers took in the last round (the next round's
    /// weights divide by it before the true total is known).
    public var previousTotalTokens: Int?
    /// DiLoCo with time rounds: compute seconds the next round may take.
    public var roundBudgetSeconds: Double?
    /// DiLoCo with time rounds: this worker's own compute seconds carried into its next round (see `DiLoCoRounds`).
    public var roundCarrySeconds: Double?
    /// DiLoCo's outer momentum, one value per parameter. Saved as a tensor, not in the JSON.
    public var outerVelocity: [Float]?
    /// A lossy codec's error-feedback residual, one value per parameter. Saved as a tensor.
    public var feedbackResidual: [Float]?

    /// The fields that go into JSON; the vectors travel as tensors beside it.
    enum CodingKeys: String, CodingKey {
        case progress, ddpSequences, previousTotalTokens, roundBudgetSeconds, roundCarrySeconds
    }

    public init(progress: Int, ddpSequences: [Int]? = nil, previousTotalTokens: Int? = nil, roundBudgetSeconds: Double? = nil,
                roundCarrySeconds: Double? = nil, outerVelocity: [Float]? = nil, feedbackResidual: [Float]? = nil) {
        self.progress = progress
        self.ddpSequences = ddpSequences
        self.previousTotalTokens = previousTotalTokens
        self.roundBudgetSeconds = roundBudgetSeconds
        self.roundCarrySeconds = roundCarrySeconds
        self.outerVelocity = outerVelocity
        self.feedbackResidual = feedbackResidual
    }

    /// Values held, for bounding what round memory keeps.
    var valueCount: Int { (outerVelocity?.count ?? 0) + (feedbackResidual?.count ?? 0) + (ddpSequences?.count ?? 0) }
}

// MARK: In a checkpoint

extension StrategyState {
    private static let velocityName = "outer.velocity"
    private static let residualName = "feedback.residual"

    /// The form a checkpoint keeps: the fields as JSON, the vectors as tensors.
    public func record() throws -> StrategyRecord {
        var vectors: [String: [Float]] = [:]
        vectors[Self.velocityName] = outerVelocity
        vectors[Self.residualName] = feedbackResidual
        return StrategyRecord(json: try JSONEncoder().encode(self), vectors: vectors)
    }

    /// Reads a saved record; `path` names it in errors. Records saved before the state was typed
    /// (every field a vector, integers as floats) are read too, so older runs still resume.
    public init(record: StrategyRecord, path: String) throws {
        func refuse(_ reason: String) -> CheckpointError { CheckpointError(path: path, reason: "strategy state: \(reason)") }
        if let json = record.json {
            do { self = try JSONDecoder().decode(StrategyState.self, from: json) } catch {
                throw refuse(describeDecodingError(error))
            }
        } else {
            // The untyped form: "progress", "ddp.sequences", "previousTotal" and "budget" as floats.
            func integers(_ name: String) throws -> [Int]? {
                try record.vectors[name].map { values in
                    try values.map { v in
                        guard let i = ExactInteger.whole(v) else { throw refuse("\(name) holds \(v), not a whole number") }
                        return i
                    }
                }
            }
            guard let progress = try integers("progress")?.first else { throw refuse("no progress saved") }
            self.init(progress: progress, ddpSequences: try integers("ddp.sequences"), previousTotalTokens: try integers("previousTotal")?.first,
                      roundBudgetSeconds: record.vectors["budget"]?.first.map(Double.init))
        }
        outerVelocity = record.vectors[Self.velocityName]
        feedbackResidual = record.vectors[Self.residualName]
        guard progress >= 0 else { throw refuse("progress \(progress) is negative") }
        if let budget = roundBudgetSeconds, !(budget.isFinite && budget > 0) { throw refuse("round budget \(budget) s is not a positive time") }
        if let carry = roundCarrySeconds, !carry.isFinite { throw refuse("round carry \(carry) s is not a finite time") }
    }
}
