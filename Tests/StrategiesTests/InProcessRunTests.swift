import Collectives
import Coordination
import Foundation
import Strategies
import Synchronization
import TensorCore
import Training
import Transport
import XCTest

/// DDP and DiLoCo on in-memory rings in one process, checked against workers trained alone
/// (an independent reference), and a stop, a join, a loss and a frozen peer.
final class InProcessRunTests: XCTestCase {
    /// A copy of the parameters (`toArray` keeps the slab alive while it copies; a buffer pointer would not).
    func parameters(_ t: DistributedTrainer) -> [Float] { t.trainer.model.parameters.toArray() }

    func assertClose(_ a: [Float], _ b: [Float], tolerance: Float, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(a.count, b.count, file: file, line: line)
        let worst = zip(a, b).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        XCTAssertLessThan(worst, tolerance, what, file: file, line: line)
    }

    /// Every worker reported the same shared parameters in every round.
    func assertAgree(_ outcomes: [WorkerOutcome], file: StaticString = #filePath, line: UInt = #line) {
        for o in outcomes { XCTAssertNil(o.error, "\(o.error!)", file: file, line: line) }
        let rounds = outcomes.map { $0.reports.map(\.round) }
        XCTAssertEqual(Set(rounds).count, 1, "every worker reports the same rounds: \(rounds)", file: file, line: line)
        for k in outcomes[0].reports.indices {
            XCTAssertEqual(Set(outcomes.map { $0.reports[k].parameterHash }).count, 1, "round \(outcomes[0].reports[k].round)",
                           file: file, line: line)
        }
    }

    /// A worker trained alone on its share of the data, as `DistributedTrainer` places it.
    func alone(_ config: TrainConfig, rank: Int, of n: Int) throws -> Trainer {
        let t = try Trainer(config: config)
        t.restore(step: 0, trainCursor: rank * (t.trainTokenCount / n))
        return t
    }

    func testDDPWorkersAgreeAndTakeTheStepsOfTheAveragedGradient() async throws {
        let config = try tinyConfig("{name: ddp, codec: fp32, round: steps}", steps: 3)
        let workers = try trainers(config, ring: memoryRing(3))
        let outcomes = await runTogether(workers)
        assertAgree(outcomes)
        XCTAssertEqual(outcomes[0].reports.map(\.round), [0, 1, 2])

        // Reference: three trainers compute their gradients alone; one applies their mean.
        let alone = try (0..<3).map { try self.alone(config, rank: $0, of: 3) }
        for _ in 0..<3 {
            for t in alone { _ = try t.computeGradients() }
            let g = alone.map { $0.model.gradients.toArray() }
            for t in alone {
                for i in 0..<g[0].count { t.model.gradients.base[i] = (g[0][i] + g[1][i] + g[2][i]) / 3 }
                _ = t.applyGradients()
            }
        }
        assertClose(parameters(workers[1]), alone[0].model.parameters.toArray(), tolerance: 1e-5, "DDP = mean-gradient steps")
    }

    func testADiLoCoRoundWithPlainOuterStepsLandsOnTheMeanOfTheWorkersAlone() async throws {
        let config = try tinyConfig("{name: diloco, codec: fp32, innerSteps: 4, round: steps, outerLearningRate: 1, outerMomentum: 0}", steps: 8)
        let workers = try trainers(config, ring: memoryRing(3))
        let outcomes = await runTogether(workers)
        assertAgree(outcomes)
        XCTAssertEqual(outcomes[0].reports.map(\.round), [0, 1])

        // Reference: each worker alone for 4 steps from the same start; G is their mean; again.
        let alone = try (0..<3).map { try self.alone(config, rank: $0, of: 3) }
        for _ in 0..<2 {
            for t in alone { for _ in 0..<4 { _ = try t.trainStep() } }
            let p = alone.map { $0.model.parameters.toArray() }
            let mean = (0..<p[0].count).map { (p[0][$0] + p[1][$0] + p[2][$0]) / 3 }
            for t in alone { _ = mean.withUnsafeBufferPointer { t.model.parameters.buffer.update(fromContentsOf: $0) } }
        }
        assertClose(parameters(workers[2]), alone[0].model.parameters.toArray(), tolerance: 1e-5, "G = mean of local models")
    }

    /// Moment sync: after a round, every worker's AdamW moments are the mean of what the workers
    /// had (in bf16), checked against workers trained alone whose moments are averaged by hand.
    func testMomentSyncAveragesTheInnerOptimizerState() async throws {
        try await checkMomentSync(optimizer: "adamw")
    }

    /// Muon's moment sync sends only the second moments AdamW's tensors use; the whole of both
    /// slabs averaged by hand (zeros where Muon leaves them) is the reference.
    func testMomentSyncOfMuonAveragesTheStateItUses() async throws {
        try await checkMomentSync(optimizer: "muon")
    }

    private func checkMomentSync(optimizer: String) async throws {
        let config = try tinyConfig("{name: diloco, codec: fp32, innerSteps: 3, round: steps, outerLearningRate: 1, outerMomentum: 0, momentSync: 1}",
                                    steps: 6, optimizer: optimizer)
        let workers = try trainers(config, ring: memoryRing(2))
        assertAgree(await runTogether(workers))
        // Reference: each alone for 3 steps; parameters and both moments set to their means; again,
        // and the parameters set to their mean (the last round syncs no moments).
        let alone = try (0..<2).map { try self.alone(config, rank: $0, of: 2) }
        func average(_ slab: (Trainer) -> FloatSlab) {
            let values = alone.map { slab($0).toArray() }
            let mean = (0..<values[0].count).map { (values[0][$0] + values[1][$0]) / 2 }
            for t in alone { _ = mean.withUnsafeBufferPointer { slab(t).buffer.update(fromContentsOf: $0) } }
        }
        for round in 0..<2 {
            for t in alone { for _ in 0..<3 { _ = try t.trainStep() } }
            average { $0.model.parameters }
            if round == 0 {
                average { $0.optimizer.m }
                average { $0.optimizer.v }
            }
        }
        assertClose(parameters(workers[0]), alone[0].model.parameters.toArray(), tolerance: 2e-3, "G with the moments averaged once")
        let without = try trainers(try tinyConfig("{name: diloco, codec: fp32, innerSteps: 3, round: steps, outerLearningRate: 1, outerMomentum: 0}",
                                                  steps: 6, optimizer: optimizer), ring: memoryRing(2))
        assertAgree(await runTogether(without))
        let reference = alone[0].model.parameters.toArray()
        let apart = zip(parameters(without[0]), reference).map { abs($0 - $1) / max(1, abs($1)) }.max()!
        XCTAssertGreaterThan(apart, 2e-3, "without the sync the run ends elsewhere, so the tolerance above can tell")
    }

    /// Streaming with 2 interleaved fragments: round r averages only the coordinates in the blocks of 64
    /// numbered ≡ r (mod 2); the others keep training locally. Checked against workers trained alone that
    /// do exactly that.
    func testStreamingFragmentsSyncInTurnAndTheRestKeepsTraining() async throws {
        let config = try tinyConfig("{name: diloco, codec: fp32, innerSteps: 2, round: steps, outerLearningRate: 1, outerMomentum: 0, fragments: 2}",
                                    steps: 8)
        let workers = try trainers(config, ring: memoryRing(2))
        let outcomes = await runTogether(workers)
        assertAgree(outcomes)
        XCTAssertEqual(outcomes[0].reports.map(\.round), [0, 1, 2, 3])
        let alone = try (0..<2).map { try self.alone(config, rank: $0, of: 2) }
        var shared = alone[0].model.parameters.toArray()
        for round in 0..<4 {
            for t in alone { for _ in 0..<2 { _ = try t.trainStep() } }
            let p = alone.map { $0.model.parameters.toArray() }
            for i in 0..<shared.count where (i / 64) % 2 == round % 2 {
                shared[i] = (p[0][i] + p[1][i]) / 2
                for t in alone { t.model.parameters.base[i] = shared[i] }
            }
        }
        // Float rounding only: the outer step computes G − (G − mean), not the mean itself, and Adam carries
        // that ulp on through the next steps (1.04e-5 on an AMD EPYC's OpenBLAS kernels; whole-model rounds
        // end over 1e-3 away, below).
        assertClose(parameters(workers[0]), shared, tolerance: 1e-4, "G: each fragment the mean of its workers' at its sync")
        let whole = try trainers(try tinyConfig("{name: diloco, codec: fp32, innerSteps: 2, round: steps, outerLearningRate: 1, outerMomentum: 0}",
                                                steps: 8), ring: memoryRing(2))
        assertAgree(await runTogether(whole))
        let apart = zip(parameters(whole[0]), shared).map { abs($0 - $1) / max(1, abs($1)) }.max()!
        XCTAssertGreaterThan(apart, 1e-3, "whole-model rounds end elsewhere")
        // A lossy codec's residual serves each fragment in turn and every worker still agrees.
        let int8 = try tinyConfig("{name: diloco, codec: int8, innerSteps: 2, round: steps, fragments: 3}", steps: 12)
        let lossy = await runTogether(try trainers(int8, ring: memoryRing(3)))
        assertAgree(lossy)
        XCTAssertLessThan(lossy[0].final!.bytesSent, outcomes[0].final!.bytesSent * 3, "int8 fragments")
    }

    /// Overlap, whole-model and streaming: round r's sum lands at the end of round r + 1 (or r + 2 with
    /// `overlapRounds` 2), and then each worker's copy of that fragment becomes G's plus what the worker
    /// trained since it was sent. Checked against workers trained alone that do exactly that (outer lr
    /// 1, momentum 0: G −= mean progress).
    func testOverlappedRoundsLandARoundLateAndKeepWhatWasTrainedMeanwhile() async throws {
        for (fragments, landsAfter) in [(1, 1), (2, 1), (1, 2), (3, 2)] {
            let config = try tinyConfig("{name: diloco, codec: fp32, innerSteps: 2, round: steps, outerLearningRate: 1, outerMomentum: 0, "
                                        + "overlap: true, overlapRounds: \(landsAfter), fragments: \(fragments)}", steps: 12)
            let workers = try trainers(config, ring: memoryRing(2))
            assertAgree(await runTogether(workers))
            let alone = try (0..<2).map { try self.alone(config, rank: $0, of: 2) }
            var shared = alone[0].model.parameters.toArray()
            var start = [shared, shared]
            var pending: [(round: Int, fragment: Int, mean: [Int: Float])] = []
            let rounds = 6
            for round in 0..<rounds {
                for t in alone { for _ in 0..<2 { _ = try t.trainStep() } }
                let f = round % fragments
                // Fragment f: the blocks of 64 values numbered f, f + F, … (`InterleavedFragments`).
                func fragment(_ f: Int) -> [Int] { (0..<shared.count).filter { ($0 / 64) % fragments == f } }
                let coordinates = fragment(f)
                var p = alone.map { $0.model.parameters.toArray() }
                let progress = (0..<2).map { w in coordinates.map { start[w][$0] - p[w][$0] } }
                let final = round == rounds - 1
                while let (sent, landed, mean) = pending.first, final || sent <= round - landsAfter {
                    pending.removeFirst()
                    for (i, m) in mean { shared[i] -= m }
                    for w in 0..<2 {
                        for i in fragment(landed) {
                            p[w][i] = shared[i] - (start[w][i] - p[w][i])
                            start[w][i] = shared[i]
                        }
                    }
                }
                var mean: [Int: Float] = [:]
                for (k, i) in coordinates.enumerated() { mean[i] = (progress[0][k] + progress[1][k]) / 2 }
                if final {
                    for (i, m) in mean { shared[i] -= m }
                } else {
                    pending.append((round, f, mean))
                    for w in 0..<2 { for i in coordinates { start[w][i] = p[w][i] } }
                }
                for w in 0..<2 { _ = p[w].withUnsafeBufferPointer { alone[w].model.parameters.buffer.update(fromContentsOf: $0) } }
            }
            assertClose(parameters(workers[0]), shared, tolerance: 1e-5,
                        "G with \(fragments) fragment(s), overlapped, landing \(landsAfter) round(s) later")
        }
    }

    /// Two sums on the ring at once (one waiting for the other) and a moment sync every round, which
    /// takes the ring in the foreground: every worker still agrees, and each sum lands two rounds late.
    func testSumsWithTwoRoundsToLandShareTheRingWithMomentSync() async throws {
        let config = try tinyConfig("{name: diloco, codec: int8, innerSteps: 2, round: steps, overlap: true, overlapRounds: 2, fragments: 3, "
                                    + "momentSync: 1}", steps: 12)
        let outcomes = await runTogether(try trainers(config, ring: memoryRing(3)))
        assertAgree(outcomes)
        XCTAssertEqual(outcomes[0].reports.map(\.round), Array(0..<6))
    }

    func testDiLoCoWithACodecAgreesEveryRoundAndOverlapChangesWhatIsShared() async throws {
        let plain = try tinyConfig("{name: diloco, codec: int8, innerSteps: 3, round: steps}", steps: 12)
        let overlapped = try tinyConfig("{name: diloco, codec: int8, innerSteps: 3, round: steps, overlap: true}", steps: 12)
        let a = await runTogether(try trainers(plain, ring: memoryRing(3)))
        let b = await runTogether(try trainers(overlapped, ring: memoryRing(3)))
        assertAgree(a)
        assertAgree(b)
        XCTAssertEqual(b[0].reports.map(\.round), [0, 1, 2, 3])
        XCTAssertNotEqual(a[0].final?.parameterHash, b[0].final?.parameterHash, "overlap applies each round's progress a round later")
        XCTAssertGreaterThan(b[0].final!.bytesSent, 0)
    }

    /// With overlap, a round's validation sums travel in its background all-reduce (no barrier) and are
    /// reported when it lands, a round later: the loss of G as it was when validated.
    func testOverlappedValidationTravelsWithTheRoundAndLandsARoundLater() async throws {
        var config = try tinyConfig("{name: diloco, codec: int8, innerSteps: 2, round: steps, overlap: true}", steps: 12)
        config.evaluation.interval = 6 // every third round: the third (index 2) of six validates
        let memories = [RoundMemory(), RoundMemory()]
        let workers = try trainers(config, ring: memoryRing(2), memories: memories)
        stopAfter(4, workers)
        let outcomes = await runTogether(workers)
        let validations = outcomes.map { $0.reports.map(\.validationLoss) }
        XCTAssertEqual(validations[0].map { $0 != nil }, [false, false, false, true], "\(validations[0])")
        XCTAssertEqual(validations[0], validations[1])
        // The reference: G at the end of the third round (round memory keeps it) on every validation batch.
        let reference = try Trainer(config: config)
        XCTAssertNotNil(memories[0].restore(progress: 3, into: reference))
        let sums = try reference.validationLossSum(part: 0, of: 1)
        XCTAssertEqual(try XCTUnwrap(validations[0][3]), Double(sums.sum / Float(sums.batches)), accuracy: 1e-5)
    }

    func testDiLoCoTimeRoundsGiveTheFastWorkerMoreStepsAndWeighItsProgressByTokens() async throws {
        let config = try tinyConfig("{name: diloco, codec: fp32, innerSteps: 10, round: time, outerLearningRate: 1, outerMomentum: 0}",
                                    steps: 30)
        // Steps of 1/64 s and 3/64 s (exact in binary): the budget is 10 fast steps = 10/64 s, and
        // the slow worker stops before a step would overrun it: after 3 (12/64 > 10/64); the 1/64 s it
        // leaves each round carries, so that its third round's budget, 12/64, fits 4.
        let workers = try trainers(config, ring: memoryRing(2), secondsPerCall: [1.0 / 64, 3.0 / 64])
        let outcomes = await runTogether(workers)
        assertAgree(outcomes)
        XCTAssertEqual(outcomes[0].reports.map(\.steps), [10, 20, 30])
        XCTAssertEqual(outcomes[1].reports.map(\.steps), [3, 6, 10])

        // Reference for the first round: each alone, then their models weighted by tokens, 10:3.
        let config1 = try tinyConfig("{name: diloco, codec: fp32, innerSteps: 10, round: time, outerLearningRate: 1, outerMomentum: 0}",
                                     steps: 10)
        let first = try trainers(config1, ring: memoryRing(2), secondsPerCall: [1.0 / 64, 3.0 / 64])
        assertAgree(await runTogether(first))
        let fast = try alone(config1, rank: 0, of: 2), slow = try alone(config1, rank: 1, of: 2)
        for _ in 0..<10 { _ = try fast.trainStep() }
        for _ in 0..<3 { _ = try slow.trainStep() }
        let f = fast.model.parameters.toArray(), s = slow.model.parameters.toArray()
        assertClose(parameters(first[0]), (0..<f.count).map { (10 * f[$0] + 3 * s[$0]) / 13 }, tolerance: 1e-5, "G = 10:3 mean")
    }

    /// Stops a run after `rounds` rounds: the trainers end with `RingChange`, as when a worker joins.
    func stopAfter(_ rounds: Int, _ workers: [DistributedTrainer]) {
        let seen = Mutex(0), n = workers.count
        for w in workers {
            // Asked once per worker per round: true from the `rounds`-th round on.
            w.ringChanged = { seen.withLock { $0 += 1; return $0 > (rounds - 1) * n } }
        }
    }

    func testAStoppedRunResumesFromMemoryOrDiskToTheSameParameters() async throws {
        // Muon too: round memory copies only the second moments its AdamW part uses once a snapshot's storage is
        // reused (from the third round on), so the run stops after three.
        for optimizer in ["adamw", "muon"] {
            let config = try tinyConfig("{name: diloco, codec: int8, innerSteps: 2, round: steps}", steps: 10, checkpointInterval: 2,
                                        optimizer: optimizer)
            let whole = await runTogether(try trainers(config, ring: memoryRing(2)))
            assertAgree(whole)

            for fromDisk in [false, true] {
                let folder = FileManager.default.temporaryDirectory.appendingPathComponent("inprocess-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(at: folder) }
                let memories = [RoundMemory(), RoundMemory()]
                let first = try trainers(config, ring: memoryRing(2), memories: memories, folder: folder)
                stopAfter(3, first)
                let stopped = await runTogether(first)
                XCTAssertTrue(stopped.allSatisfy { $0.error is RingChange }, "\(stopped.map { $0.error.map { "\($0)" } })")
                XCTAssertEqual(stopped[0].reports.map(\.round), [0, 1, 2])
                let second = try trainers(config, ring: memoryRing(2), memories: fromDisk ? nil : memories, folder: folder)
                let resumed = await runTogether(second, resume: true)
                assertAgree(resumed)
                XCTAssertEqual(resumed[0].reports.first?.round, 3, "goes on from the round every worker completed")
                XCTAssertEqual(resumed[0].final?.parameterHash, whole[0].final?.parameterHash,
                               "\(optimizer) from \(fromDisk ? "disk" : "memory")")
            }
        }
    }

    /// Issue 17: a flipped byte in one worker's newest saved state dropped that worker at resume; it
    /// now offers its previous valid state, and every worker goes back to that round.
    func testADamagedNewestStateFallsBackToThePreviousValidOne() async throws {
        let config = try tinyConfig("{name: diloco, codec: int8, innerSteps: 2, round: steps}", steps: 10, checkpointInterval: 2)
        let whole = await runTogether(try trainers(config, ring: memoryRing(2)))
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("inprocess-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try trainers(config, ring: memoryRing(2), folder: folder)
        stopAfter(3, first)
        _ = await runTogether(first)
        let saved = CheckpointStore(directory: folder.appendingPathComponent("w1"), keep: 2).checkpoints()
        XCTAssertEqual(saved.count, 2, "two states kept: \(saved)")
        let newest = try XCTUnwrap(saved.first).appendingPathComponent("optimizer.safetensors")
        var bytes = try Data(contentsOf: newest)
        bytes[bytes.count - 3] ^= 0x10
        try bytes.write(to: newest)

        let resumed = await runTogether(try trainers(config, ring: memoryRing(2), folder: folder), resume: true)
        assertAgree(resumed)
        XCTAssertEqual(resumed[0].reports.first?.round, 2, "both went back to the round before w1's damaged one")
        XCTAssertEqual(resumed[0].final?.parameterHash, whole[0].final?.parameterHash)
    }

    /// Issue 17: one worker's NaN or ×1000 update went straight into everyone's model. The guard
    /// keeps the round out of the shared model, on every worker alike, and names the worker.
    func testANaNOrScaledContributionNeverReachesTheSharedModelAndItsWorkerIsNamed() async throws {
        // Streaming with two rounds to land: the damaged sum lands while the next is still on the ring, which
        // the workers' exchange of norms must wait for.
        for strategy in ["{name: diloco, codec: int8, innerSteps: 2, round: steps}", "{name: ddp, codec: fp32}",
                         "{name: diloco, codec: int8, innerSteps: 2, round: steps, overlap: true, overlapRounds: 2, fragments: 3}"] {
            let config = try tinyConfig(strategy, steps: 16)
            let whole = await runTogether(try trainers(config, ring: memoryRing(3)))
            for fault in [FaultInjection(kind: .nan, round: 1), FaultInjection(kind: .scale(1000), round: 5)] {
                let workers = try trainers(config, ring: memoryRing(3))
                workers[1].fault = fault
                let outcomes = await runTogether(workers)
                assertAgree(outcomes)
                let what = "\(strategy) \(fault)"
                // Every worker reports a rejected sum; a worker that caught its own NaN before sending reports it alone.
                let rejected = outcomes.map { $0.reports.compactMap(\.rejectedUpdate) }.max { $0.count < $1.count } ?? []
                XCTAssertEqual(rejected.map(\.round), [fault.round], what)
                XCTAssertEqual(rejected.first?.workers, ["w1"], what)
                XCTAssertEqual(rejected.first?.reason.hasPrefix(fault.kind == .nan ? "not finite" : "norm "), true, "\(what): \(rejected)")
                let (loss, clean) = (outcomes[0].final!.loss, whole[0].final!.loss)
                XCTAssertTrue(loss.isFinite, what)
                XCTAssertLessThan(abs(loss - clean) / clean, 0.1, "\(what): one round's update dropped, not the run")
            }
        }
    }

    func testAJoiningWorkerTakesTheSharedStateAndTheRingAgreesFromThen() async throws {
        for round in ["steps", "time"] {
            let config = try tinyConfig("{name: diloco, codec: fp32, innerSteps: 2, round: \(round)}", steps: 10)
            // With time rounds the newcomer must also take the round budget and the last total:
            // without them it would weigh and time its rounds unlike the others.
            let times = round == "time" ? [1.0 / 64, 1.0 / 64, 2.0 / 64] : nil
            let memories = [RoundMemory(), RoundMemory()]
            let first = try trainers(config, ring: memoryRing(2), memories: memories, secondsPerCall: times.map { Array($0.prefix(2)) })
            stopAfter(2, first)
            _ = await runTogether(first)

            let second = try trainers(config, ring: memoryRing(3, timeoutMilliseconds: 2_000), memories: memories + [RoundMemory()],
                                      secondsPerCall: times)
            second[2].joinsRunningRing = true
            for w in second { w.stateSource = 0 }
            let outcomes = await runTogether(second, resume: true)
            assertAgree(outcomes)
            XCTAssertEqual(outcomes[2].reports.map(\.round), [2, 3, 4], "the newcomer goes on from the run's round (\(round) rounds)")
            XCTAssertEqual(outcomes[2].reports.first.map { $0.steps - (round == "time" ? 1 : 2) }, 4,
                           "it took the source's step (4) and then its own steps (\(round) rounds)")
        }
    }

    func testALostPeerIsNamedWithItsRoundAndTheSurvivorsGoOnFromMemory() async throws {
        let config = try tinyConfig("{name: diloco, codec: fp32, innerSteps: 2, round: steps}", steps: 12)
        let memories = [RoundMemory(), RoundMemory(), RoundMemory()]
        let ring = memoryRing(3, timeoutMilliseconds: 300)
        // Worker 2's link to worker 0 drops in its third round (the first has 2 pieces a hop).
        (ring[2].next as! MemoryLink).dropAfter(2 * 2 * 2 + 1)
        let first = try trainers(config, ring: ring, memories: memories)
        let ledgers = [ComputeLedger(), ComputeLedger()]
        for (w, ledger) in zip(first, ledgers) { w.ledger = ledger }
        let outcomes = await runTogether(first)
        let failure = try XCTUnwrap(outcomes[0].error as? RingFailure, "\(String(describing: outcomes[0].error))")
        XCTAssertEqual(failure.kind, .lost)
        XCTAssertEqual(failure.peer, "w2")
        XCTAssertNotNil(failure.round)
        XCTAssertTrue(outcomes.allSatisfy { $0.error is RingFailure }, "\(outcomes.map { $0.error.map { "\($0)" } })")
        let completed = outcomes.map { $0.reports.count }.min()!

        let survivors = try trainers(config, ring: memoryRing(2), memories: Array(memories.prefix(2)))
        for (w, ledger) in zip(survivors, ledgers) { w.ledger = ledger }
        let resumed = await runTogether(survivors, resume: true)
        assertAgree(resumed)
        XCTAssertEqual(resumed[0].reports.first?.round, completed, "the broken round is the first the survivors complete")
        XCTAssertEqual(resumed[0].final?.round, 5)
        // Its inner steps were done when its all-reduce broke: the survivors finish it, they do not train it again.
        for (outcome, ledger) in zip(resumed, ledgers) {
            XCTAssertEqual(ledger.tokens, (outcome.final?.steps ?? 0) * config.tokensPerStep, "every computed step was kept")
        }
    }

    func testAFrozenPeerTimesOutNamingThePeerAndTheRound() async throws {
        let config = try tinyConfig("{name: ddp, codec: fp32, round: steps}", steps: 2)
        let ring = memoryRing(2, timeoutMilliseconds: 300)
        let workers = try trainers(config, ring: ring)
        let start = ContinuousClock.now
        // Worker 1 never runs: it is frozen from worker 0's point of view.
        let outcome = await runTogether([workers[0]])[0]
        let failure = try XCTUnwrap(outcome.error as? RingFailure, "\(String(describing: outcome.error))")
        XCTAssertEqual(failure.kind, .timedOut)
        XCTAssertEqual(failure.peer, "w1")
        XCTAssertEqual(failure.round, 0)
        XCTAssertLessThan(ContinuousClock.now - start, .seconds(1))
    }
}
