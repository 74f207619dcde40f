import Foundation
import Strategies
import Training
import XCTest

/// The pure parts of the strategies, each alone: balancing, round weights, resume agreement,
/// state hand-off and the saved state.
final class StrategyPartsTests: XCTestCase {
    func testDDPBalancerGivesASlowerWorkerFewerSequencesSoBothFinishTogether() {
        var balancer = DDPBalancer(workers: 2, baseSequences: 8)
        XCTAssertEqual(balancer.sequences, [8, 8])
        XCTAssertEqual(balancer.weight(of: 0), 0.5)
        // Worker 0 takes 1 s a sequence, worker 1 is twice as slow; optimizer steps 0.5 s each.
        balancer.record([.init(secondsPerSequence: 1, optimizerSeconds: 0.5), .init(secondsPerSequence: 2, optimizerSeconds: 0.5)])
        // The slowest needs 8 × 2 + 0.5 = 16.5 s: worker 0 fits (16.5 − 0.5) / 1 = 16 sequences.
        XCTAssertEqual(balancer.sequences, [16, 8])
        XCTAssertEqual(balancer.weight(of: 0), 16.0 / 24)
        // A new measurement moves the running average by 0.3 of the difference, not all the way.
        balancer.record([.init(secondsPerSequence: 2, optimizerSeconds: 0.5), .init(secondsPerSequence: 2, optimizerSeconds: 0.5)])
        XCTAssertEqual(balancer.speeds?[0].secondsPerSequence ?? 0, 1.3, accuracy: 1e-12)
        XCTAssertEqual(balancer.sequences, [12, 8], "(16.5 − 0.5) / 1.3 = 12.3")
        // Saved counts come back on resume; a wrong count of them is ignored.
        XCTAssertEqual(DDPBalancer(workers: 2, baseSequences: 8, saved: [12, 8]).sequences, [12, 8])
        XCTAssertEqual(DDPBalancer(workers: 3, baseSequences: 8, saved: [12, 8]).sequences, [8, 8, 8])
    }

    func testDDPBalancerKeepsCountsBoundedWhatEverPeersMeasured() {
        var balancer = DDPBalancer(workers: 2, baseSequences: 4)
        balancer.record([.init(secondsPerSequence: 0, optimizerSeconds: 0), .init(secondsPerSequence: .nan, optimizerSeconds: 1)])
        XCTAssertTrue(balancer.sequences.allSatisfy { (1...(1 << 20)).contains($0) }, "\(balancer.sequences)")
    }

    func testDiLoCoFixedRoundsWeighEveryWorkerEquallyAndEndAfterTheSteps() throws {
        var plan = DiLoCoRounds(innerSteps: 5, workers: 4, timed: false, tokensPerStep: 128)
        XCTAssertEqual(plan.tailCount, 0)
        XCTAssertFalse(plan.needsFirstBudget)
        XCTAssertFalse(plan.isOver(steps: 4, computeSeconds: 100, fixedSteps: 5))
        XCTAssertTrue(plan.isOver(steps: 5, computeSeconds: 0.1, fixedSteps: 5))
        XCTAssertEqual(plan.weight(roundTokens: 640).weight, 0.25)
        XCTAssertEqual(try plan.absorb(tail: UnsafeBufferPointer(start: nil, count: 0), guess: 1), 1)
    }

    /// Round memory overwrites its oldest snapshot in place; what it gives back is still each round's own
    /// state, whatever the trainer and the caller's vectors did since.
    func testRoundMemoryKeepsTheLastTwoRoundsThroughReuse() throws {
        let trainer = try Trainer(config: tinyConfig("{name: diloco, innerSteps: 2}", steps: 4))
        let memory = RoundMemory()
        let count = trainer.model.parameters.count
        func fill(_ x: Float) { for i in 0..<count { trainer.model.parameters.buffer[i] = x; trainer.optimizer.m.buffer[i] = x + 0.5 } }
        for round in 1...5 {
            fill(Float(round))
            var velocity = [Float](repeating: Float(10 * round), count: count)
            let shared = [Float](repeating: Float(-round), count: count)
            if round == 5 {
                shared.withUnsafeBufferPointer { memory.remember(trainer, parameters: $0, state: StrategyState(progress: round, outerVelocity: velocity)) }
            } else {
                memory.remember(trainer, state: StrategyState(progress: round, outerVelocity: velocity))
            }
            velocity[0] = 999 // the caller's vector changes after it was remembered
        }
        XCTAssertEqual(memory.progresses, [5, 4])
        fill(0)
        XCTAssertNil(memory.restore(progress: 3, into: trainer))
        let four = try XCTUnwrap(memory.restore(progress: 4, into: trainer))
        XCTAssertEqual(four.outerVelocity, [Float](repeating: 40, count: count))
        XCTAssertEqual(Array(trainer.model.parameters.buffer), [Float](repeating: 4, count: count))
        XCTAssertEqual(Array(trainer.optimizer.m.buffer), [Float](repeating: 4.5, count: count))
        let five = try XCTUnwrap(memory.restore(progress: 5, into: trainer))
        XCTAssertEqual(five.outerVelocity, [Float](repeating: 50, count: count))
        XCTAssertEqual(Array(trainer.model.parameters.buffer), [Float](repeating: -5, count: count), "the shared parameters given")
        XCTAssertEqual(Array(trainer.optimizer.m.buffer), [Float](repeating: 5.5, count: count))
    }

    func testTimeRoundsCarryWhatAWorkerLeftOfItsBudget() throws {
        // A slow worker's 0.87 s step does not divide the 2.16 s budget: without a carry it stops after
        // two steps (1.74 s) every round and waits 0.42 s for the others.
        let budget = 2.16, step = 0.87, rounds = 100
        var plan = DiLoCoRounds(innerSteps: 5, workers: 2, timed: true, tokensPerStep: 60)
        try plan.setFirstBudget(fastestStepSeconds: budget / 5)
        var total = 0.0
        var counts: Set<Int> = []
        for _ in 0..<rounds {
            var steps = 0, seconds = 0.0
            repeat {
                steps += 1
                seconds += step
            } while !plan.isOver(steps: steps, computeSeconds: seconds, fixedSteps: 5)
            plan.endRound(computeSeconds: seconds)
            total += seconds
            counts.insert(steps)
        }
        XCTAssertEqual(counts, [2, 3], "two or three steps a round")
        XCTAssertLessThanOrEqual(total, Double(rounds) * budget + 1e-9, "never ahead of the budgets")
        XCTAssertGreaterThan(total, Double(rounds) * budget - step, "never more than a step behind them")
        // A step longer than the budget: one step a round, and the debt stays bounded by one budget.
        var slow = DiLoCoRounds(innerSteps: 5, workers: 2, timed: true, tokensPerStep: 60)
        try slow.setFirstBudget(fastestStepSeconds: 0.1)
        for _ in 0..<10 {
            XCTAssertTrue(slow.isOver(steps: 1, computeSeconds: 3, fixedSteps: 5))
            slow.endRound(computeSeconds: 3)
        }
        XCTAssertEqual(slow.carrySeconds, -0.5, accuracy: 1e-12)
        // The carry is this worker's state: saved with it and restored.
        let saved = StrategyState(progress: 3, roundBudgetSeconds: budget, roundCarrySeconds: 0.4)
        let restored = try StrategyState(record: saved.record(), path: "test")
        XCTAssertEqual(DiLoCoRounds(innerSteps: 5, workers: 2, timed: true, tokensPerStep: 60, saved: restored).ownBudgetSeconds ?? 0,
                       budget + 0.4, accuracy: 1e-12)
    }

    func testDiLoCoTimeRoundsWeighByTokensAndBudgetByTheFastestWorker() throws {
        var plan = DiLoCoRounds(innerSteps: 10, workers: 2, timed: true, tokensPerStep: 60)
        XCTAssertTrue(plan.needsFirstBudget)
        XCTAssertThrowsError(try plan.setFirstBudget(fastestStepSeconds: .nan), "a peer's NaN step time is refused")
        XCTAssertThrowsError(try plan.setFirstBudget(fastestStepSeconds: 0))
        try plan.setFirstBudget(fastestStepSeconds: 0.1)
        XCTAssertEqual(plan.budgetSeconds ?? 0, 1.0, accuracy: 1e-12)
        // Stop once one more step of the mean length would overrun the budget.
        XCTAssertFalse(plan.isOver(steps: 4, computeSeconds: 0.8, fixedSteps: 10), "0.8 + 0.2 = 1.0 fits")
        XCTAssertTrue(plan.isOver(steps: 4, computeSeconds: 0.81, fixedSteps: 10))

        // First round: no total yet, so the guess is what 10 steps of both would take; the same
        // on every worker whatever it did (each corrects the same sum by it).
        let (guess, weight) = plan.weight(roundTokens: 600)
        XCTAssertEqual(guess, 1200)
        XCTAssertEqual(weight, 0.5)
        XCTAssertEqual(plan.weight(roundTokens: 180).guess, 1200)
        // Worker 1 did 600 tokens at 0.1 s a step; worker 0 (the fast one) 1200 at 0.05 s.
        var tail = [Float](repeating: 0, count: plan.tailCount)
        tail.withUnsafeMutableBufferPointer { plan.fillTail($0, rank: 1, roundTokens: 600, meanStepSeconds: 0.1) }
        XCTAssertEqual(tail, [0, 600, 0, 0.1])
        let summed: [Float] = [1200, 600, 0.05, 0.1]
        let correction = try summed.withUnsafeBufferPointer { try plan.absorb(tail: $0, guess: guess) }
        XCTAssertEqual(correction, 1200 / 1800, "weights become 600/1800 after the correction")
        XCTAssertEqual(plan.previousTotalTokens, 1800)
        XCTAssertEqual(plan.lastWork, [1200, 600])
        XCTAssertEqual(plan.budgetSeconds ?? 0, 10 * Double(Float(0.05)), accuracy: 1e-12)
        XCTAssertEqual(plan.weight(roundTokens: 600).weight, 600 / 1800)

        // A peer's NaN or negative count is refused, not averaged into everyone's model.
        for bad: [Float] in [[.nan, 600, 0.05, 0.1], [-5, 600, 0.05, 0.1], [1200, 600, 0, 0.1]] {
            XCTAssertThrowsError(try bad.withUnsafeBufferPointer { try plan.absorb(tail: $0, guess: 1) }, "\(bad)")
        }
    }

    func testResumeAgreementTakesTheLowestNewestProgressAndRankZerosSource() throws {
        typealias Offer = ResumeAgreement.Offer
        XCTAssertNil(ResumeAgreement(offers: [Offer(progress: 0, namedSource: nil), Offer(progress: 0, namedSource: nil)]), "a fresh start")
        let a = try XCTUnwrap(ResumeAgreement(offers: [Offer(held: [7, 6], namedSource: 2), Offer(progress: 6, namedSource: 1),
                                                       Offer(progress: 0, namedSource: 1)]))
        XCTAssertEqual(a.progress, 6)
        XCTAssertEqual(a.source, 0, "position 0 named worker 2, which has no state: the first with some serves")
        XCTAssertTrue(a.someHaveNone)
        let b = try XCTUnwrap(ResumeAgreement(offers: [Offer(progress: 5, namedSource: 1), Offer(progress: 5, namedSource: 0)]))
        XCTAssertEqual(b.source, 1, "position 0's view decides")
        XCTAssertFalse(b.someHaveNone)
    }

    /// A worker that was away (frozen, say) while the others went on holds only older rounds than
    /// the others keep: it takes their state instead of dragging them back to a round they no
    /// longer hold (which stopped every worker).
    func testAWorkerThatFellBehindTakesTheStateOfThoseWhoWentOn() throws {
        typealias Offer = ResumeAgreement.Offer
        let a = try XCTUnwrap(ResumeAgreement(offers: [Offer(held: [9, 8], namedSource: 2), Offer(held: [8, 9], namedSource: nil),
                                                       Offer(held: [7, 6], namedSource: nil)]))
        XCTAssertEqual(a.progress, 9)
        XCTAssertEqual(a.source, 0, "the named worker does not hold round 9")
        XCTAssertTrue(a.someHaveNone)
        // Workers that can all go back to the lowest newest do so (checkpoints on disk included).
        let b = try XCTUnwrap(ResumeAgreement(offers: [Offer(held: [29, 28, 20, 10], namedSource: nil), Offer(held: [20, 10], namedSource: nil)]))
        XCTAssertEqual(b.progress, 20)
        XCTAssertFalse(b.someHaveNone)
        XCTAssertEqual(Offer(held: [5, 123_456_789, 5, 0], namedSource: 3).held, [123_456_789, 5], "newest first, once each")
    }

    func testStateHandOffCarriesTheStepExactlyAndRefusesABrokenOne() throws {
        let count = 3
        let parameters: [Float] = [1, 2, 3], m: [Float] = [4, 5, 6], v: [Float] = [7, 8, 9]
        let step = 123_456_789  // more than a Float holds exactly
        var message = [Float](repeating: 0, count: StateHandOff.messageCount(parameters: count))
        let state = StrategyState(progress: 9, previousTotalTokens: 40_000_001, roundBudgetSeconds: 0.123456789012345,
                                  outerVelocity: [0.5, 0.25, 0.125])
        message.withUnsafeMutableBufferPointer { out in
            parameters.withUnsafeBufferPointer { p in m.withUnsafeBufferPointer { m in v.withUnsafeBufferPointer { v in
                StateHandOff.pack(into: out, parameters: p, m: m, v: v, step: step, state: state)
            } } }
        }
        var p2 = [Float](repeating: 0, count: count), m2 = p2, v2 = p2
        let taken = try p2.withUnsafeMutableBufferPointer { p in try m2.withUnsafeMutableBufferPointer { m in
            try v2.withUnsafeMutableBufferPointer { v in try message.withUnsafeBufferPointer { try StateHandOff.unpack($0, parameters: p, m: m, v: v) } }
        } }
        XCTAssertEqual(taken, StateHandOff.Scalars(step: step, outerVelocity: [0.5, 0.25, 0.125], previousTotalTokens: 40_000_001,
                                                   roundBudgetSeconds: 0.123456789012345), "every integer and the budget exact")
        XCTAssertEqual([p2, m2, v2], [parameters, m, v])
        message[4 * count] = .nan
        XCTAssertThrowsError(try p2.withUnsafeMutableBufferPointer { p in try m2.withUnsafeMutableBufferPointer { m in
            try v2.withUnsafeMutableBufferPointer { v in try message.withUnsafeBufferPointer { try StateHandOff.unpack($0, parameters: p, m: m, v: v) } }
        } })
        XCTAssertEqual(ExactInteger.join(3.5, 0), nil)
        XCTAssertEqual(ExactInteger.join(-1, 0), nil)
    }

    func testStrategyStateSavesIntegersAsIntegersAndReadsTheOlderUntypedForm() throws {
        let state = StrategyState(progress: 12, ddpSequences: [9, 4], previousTotalTokens: 33_554_433, roundBudgetSeconds: 1.25,
                                  outerVelocity: [0.5, -1], feedbackResidual: [0.25, 0])
        let record = try state.record()
        let json = try XCTUnwrap(record.json.map { String(decoding: $0, as: UTF8.self) })
        XCTAssertTrue(json.contains("33554433"), "an integer stays exact: \(json)")
        XCTAssertFalse(json.contains("outer"), "vectors travel as tensors, not JSON")
        XCTAssertEqual(Set(record.vectors.keys), ["outer.velocity", "feedback.residual"])
        XCTAssertEqual(try StrategyState(record: record, path: "x"), state)

        // Saved before the state was typed: every field a float vector.
        let old = StrategyRecord(json: nil, vectors: ["progress": [3], "outer.velocity": [1, 2], "previousTotal": [4096], "budget": [0.5]])
        XCTAssertEqual(try StrategyState(record: old, path: "x"),
                       StrategyState(progress: 3, previousTotalTokens: 4096, roundBudgetSeconds: 0.5, outerVelocity: [1, 2]))
        for (bad, words) in [(StrategyRecord(json: nil, vectors: ["progress": [.nan]]), "not a whole number"),
                             (StrategyRecord(json: nil, vectors: [:]), "no progress"),
                             (StrategyRecord(json: Data(#"{"progress": "many"}"#.utf8), vectors: [:]), "progress"),
                             (StrategyRecord(json: Data(#"{"progress": 2, "roundBudgetSeconds": -1}"#.utf8), vectors: [:]), "budget")] {
            XCTAssertThrowsError(try StrategyState(record: bad, path: "ckpt")) { error in
                XCTAssertTrue("\(error)".contains(words) && "\(error)".contains("ckpt"), "\(error)")
            }
        }
    }

    func testTheUpdateGuardRejectsWhatIsNotFiniteOrFarOutsideAndNamesWhoseContributionItWas() {
        var guardian = UpdateGuard()
        func judge(_ values: [Float]) -> UpdateGuard.Verdict { values.withUnsafeBufferPointer { guardian.judge($0) } }
        XCTAssertEqual(judge([1, .nan]), .notFinite)
        XCTAssertEqual(judge([300, 400]), .accepted, "before three accepted updates only finiteness is judged")
        for norm: Float in [1, 2] { XCTAssertEqual(judge([norm]), .accepted) }
        XCTAssertEqual(judge([5000]), .accepted, "10× the largest recent (500) is still in")
        XCTAssertEqual(judge([60_000]), .outlier(norm: 60_000, recentLargest: 5000))
        XCTAssertEqual(guardian.recentNorms, [500, 1, 2, 5000], "a rejected norm is not remembered")

        // Naming: not finite, or over 10× the others' median.
        XCTAssertEqual(guardian.name([1, .nan, 1.2]), [1])
        XCTAssertEqual(guardian.name([1, 1.1, 50]), [2])
        XCTAssertEqual(guardian.name([1, 1.1, 5]), [], "nobody stands out")
        XCTAssertFalse(guardian.mustStop(1))
        _ = guardian.name([1, .nan, 1])
        _ = guardian.name([1, .infinity, 1])
        XCTAssertTrue(guardian.mustStop(1), "named three times")
        XCTAssertFalse(guardian.mustStop(2))

        XCTAssertEqual(try FaultInjection(parsing: "nan@3"), FaultInjection(kind: .nan, round: 2))
        XCTAssertEqual(try FaultInjection(parsing: "scale=1000@1"), FaultInjection(kind: .scale(1000), round: 0))
        for bad in ["nan", "nan@0", "scale=x@2", "boom@2"] {
            XCTAssertThrowsError(try FaultInjection(parsing: bad), bad)
        }
    }
}

final class SumPacingTests: XCTestCase {
    func testASumIsSpreadOverItsShareOfTheRoundLessWhatTheWorkerIsLate() {
        XCTAssertEqual(SumPacing.sendSeconds(roundSeconds: 2, lateSeconds: 0), 2 * SumPacing.share, accuracy: 1e-12)
        XCTAssertEqual(SumPacing.sendSeconds(roundSeconds: 2, lateSeconds: -0.5), 2 * SumPacing.share, accuracy: 1e-12,
                       "a worker ahead of the schedule does not pace slower: the ring goes at its slowest sender's pace")
        XCTAssertEqual(SumPacing.sendSeconds(roundSeconds: 2, lateSeconds: 0.3), 2 * SumPacing.share - 0.3, accuracy: 1e-12,
                       "a late worker's frames still end when the others' do")
        XCTAssertEqual(SumPacing.sendSeconds(roundSeconds: 2, lateSeconds: 5), 2 * SumPacing.latestShare, accuracy: 1e-12)
    }

    func testASumWithTwoRoundsToLandIsSpreadOverMostOfARoundHoweverLateItStarts() {
        XCTAssertGreaterThan(SumPacing.chainedShare, SumPacing.share)
        for late in [-0.5, 0, 0.3, 5] {
            XCTAssertEqual(SumPacing.sendSeconds(roundSeconds: 2, lateSeconds: late, roundsToLand: 2), 2 * SumPacing.chainedShare,
                           accuracy: 1e-12, "the second round absorbs a late start (\(late) s)")
        }
    }

    func testARunsLastSumGoesAtTheBusiestSecondSoFarButNeverSlowerThanRounds() {
        XCTAssertEqual(SumPacing.lastPace(paced: 400_000, busiestSecond: 460_000), 460_000, "sooner, without a new peak")
        XCTAssertEqual(SumPacing.lastPace(paced: 400_000, busiestSecond: 0), 400_000, "nothing sent yet: the rounds' pace")
    }
}
