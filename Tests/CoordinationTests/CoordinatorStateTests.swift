import Coordination
import XCTest

/// The membership state machine, driven by requests and a clock, without sockets.
final class CoordinatorStateTests: XCTestCase {
    let run = RunDescription(runID: 7, expectedWorkers: 3, configYAML: "steps: 1", layoutHash: "abc")

    func request(_ name: String, token: String = "secret", layout: String = "abc", port: Int = 9000) -> JoinRequest {
        JoinRequest(token: token, name: name, layoutHash: layout, dataHost: "127.0.0.1", dataPort: port)
    }

    func refusal(_ body: () throws -> Void) -> CoordinatorRefusal? {
        do { try body() } catch { return error as? CoordinatorRefusal }
        return nil
    }

    func testJoinAssignsRanksAndTheRingFormsWhenEveryoneIsThere() throws {
        var s = CoordinatorState(run: run, token: "secret")
        XCTAssertEqual(try s.join(request("a"), now: 0).admission, 0)
        XCTAssertEqual(try s.join(request("b"), now: 0).admission, 1)
        XCTAssertFalse(s.ring.ready)
        XCTAssertEqual(s.phase, .waiting)
        let reply = try s.join(request("c", port: 9002), now: 1)
        XCTAssertEqual(reply.admission, 2)
        XCTAssertEqual(reply.run, run)
        XCTAssertTrue(s.ring.ready)
        XCTAssertEqual(s.ring.members.map(\.name), ["a", "b", "c"])
        XCTAssertEqual(s.ring.members[2].port, 9002)
        XCTAssertEqual(s.phase, .training)
    }

    func testOnlyTheLatestCredentialOfAMemberIsAccepted() throws {
        var s = CoordinatorState(run: run, token: "secret")
        let first = try s.join(request("a"), credential: "k1", now: 0)
        XCTAssertEqual(first.credential, "k1")
        XCTAssertNoThrow(try s.authenticate("a", credential: "k1"))
        for wrong in [nil, "", "k", "k2"] { XCTAssertEqual(refusal { try s.authenticate("a", credential: wrong) }?.status, 401) }
        XCTAssertEqual(refusal { try s.authenticate("nobody", credential: "k1") }?.status, 404)
        // A restarted worker joins again and gets a new credential; the old one stops working.
        _ = try s.join(request("a"), credential: "k2", now: 1)
        XCTAssertEqual(refusal { try s.authenticate("a", credential: "k1") }?.status, 401)
        XCTAssertNoThrow(try s.authenticate("a", credential: "k2"))
    }

    func testLostMembersGiveTheirSlotsToNewcomersButActiveOnesAreNeverDisplaced() throws {
        var s = CoordinatorState(run: run, token: "secret", heartbeatTimeout: 5)
        for name in ["a", "b", "c"] { _ = try s.join(request(name), now: 0) }
        // Churn: 300 newcomers, each lost soon after it joins, while a, b and c keep training.
        for k in 0..<300 {
            let t = Double(10 * (k + 1))
            let reply = try s.join(request("n\(k)"), now: t)
            XCTAssertEqual(reply.admission, 3 + k, "admissions are never reused")
            for name in ["a", "b", "c"] { _ = try s.heartbeat(name, now: t + 6) }
            XCTAssertEqual(s.expire(now: t + 6), ["n\(k)"])
        }
        XCTAssertLessThanOrEqual(s.status(now: 3000).members.count, CoordinatorState.maxMembers)
        XCTAssertEqual(s.ring.members.map(\.name), ["a", "b", "c"])
        // Full of active members, the run refuses rather than displacing one.
        var full = CoordinatorState(run: run, token: "secret")
        for k in 0..<CoordinatorState.maxMembers { _ = try full.join(request("w\(k)"), now: 0) }
        XCTAssertEqual(refusal { _ = try full.join(request("late"), now: 0) }?.status, 409)
    }

    func testRefusalsSayWhy() throws {
        var s = CoordinatorState(run: run, token: "secret")
        let wrongToken = refusal { _ = try s.join(request("a", token: "guess"), now: 0) }
        XCTAssertEqual(wrongToken?.status, 403)
        XCTAssertTrue(wrongToken?.reason.contains("wrong token") ?? false)
        let otherModel = refusal { _ = try s.join(request("a", layout: "def"), now: 0) }
        XCTAssertEqual(otherModel?.status, 409)
        XCTAssertTrue(otherModel?.reason.contains("differs from the run's") ?? false, otherModel?.reason ?? "")
        XCTAssertEqual(refusal { _ = try s.join(request("has space"), now: 0) }?.status, 400)
        // Names are shown in /status, /metrics and logs and become folder names: plain ASCII only.
        for bad in ["", "../x", ".hidden", "-flag", "a\u{1B}[31m", "a\u{0}", "a\u{202E}", "a\nforged line", "ünï", String(repeating: "x", count: 129)] {
            let refused = refusal { _ = try s.join(request(bad), now: 0) }
            XCTAssertEqual(refused?.status, 400, "\(bad.debugDescription)")
            XCTAssertFalse(refused?.reason.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x202E } ?? true,
                           "the refusal shows the name escaped: \(refused?.reason.debugDescription ?? "")")
        }
        XCTAssertTrue(refusal { _ = try s.join(request(String(repeating: "y", count: 100_000)), now: 0) }!.reason.count < 400,
                      "a huge name is cut short in the refusal")
        XCTAssertEqual(refusal { _ = try s.join(request("a", port: 0), now: 0) }?.status, 400)
        for name in ["a", "b", "c"] { XCTAssertEqual(try s.join(request(name), now: 0).joinsRunningRing, false) }
        XCTAssertEqual(refusal { _ = try s.heartbeat("nobody", now: 0) }?.status, 404)
        XCTAssertEqual(s.ring.members.count, 3, "refused joins change nothing")
        // Once the ring trains, another worker may join; the others take it in.
        XCTAssertEqual(try s.join(request("d"), now: 1).joinsRunningRing, true)
        XCTAssertEqual(s.ring.members.map(\.name), ["a", "b", "c", "d"])
    }

    func testHeartbeatTimeoutLeaveAndRejoinWithTheSameName() throws {
        var s = CoordinatorState(run: run, token: "secret", heartbeatTimeout: 10)
        for name in ["c", "a"] { _ = try s.join(request(name), now: 0) }
        XCTAssertFalse(s.ring.ready, "before training the ring waits for every expected worker")
        _ = try s.join(request("b"), now: 0)
        XCTAssertTrue(s.ring.ready)
        XCTAssertEqual(s.ring.members.map(\.name), ["a", "b", "c"], "the ring is in name order, whoever joined first")
        let epoch = s.epoch
        _ = try s.heartbeat("a", now: 8)
        _ = try s.heartbeat("c", now: 8)
        XCTAssertEqual(s.expire(now: 9), [])
        XCTAssertEqual(s.expire(now: 11), ["b"], "b has not been heard from for 11 s")
        XCTAssertTrue(s.ring.ready, "training started: the others go on without b")
        XCTAssertEqual(s.ring.members.map(\.name), ["a", "c"])
        XCTAssertGreaterThan(s.epoch, epoch)
        XCTAssertEqual(s.status(now: 11).members.first { $0.name == "b" }?.state, .lost)

        // b restarts on another port: same name, same rank, new address.
        let back = try s.join(request("b", port: 9100), now: 12)
        XCTAssertEqual(back.admission, 2, "the admission it joined with")
        XCTAssertTrue(s.ring.ready)
        XCTAssertEqual(s.ring.members[1].port, 9100)
        XCTAssertEqual(s.status(now: 12).members.first { $0.name == "b" }?.joins, 2)

        try s.leave("c", now: 13)
        XCTAssertEqual(s.status(now: 13).members.first { $0.name == "c" }?.state, .left)
        XCTAssertEqual(s.ring.members.map(\.name), ["a", "b"])
        XCTAssertEqual(refusal { _ = try s.heartbeat("c", now: 14) }?.status, 409, "a worker that left must join again")
        XCTAssertEqual(try s.join(request("c"), now: 15).admission, 0, "c joined first")
        XCTAssertTrue(s.ring.ready)
    }

    /// Issue 17: a worker frozen near the end woke after the run finished, revived into a ring of its own
    /// and, once the coordinator exited, retried it for its whole patience (10 minutes).
    func testAMemberLostBeforeTheEndIsToldTheRunFinishedWhenItWakes() throws {
        var s = CoordinatorState(run: run, token: "secret", heartbeatTimeout: 5)
        for name in ["a", "b", "c"] { _ = try s.join(request(name), now: 0) }
        _ = try s.heartbeat("a", now: 4)
        _ = try s.heartbeat("b", now: 4)
        XCTAssertEqual(s.expire(now: 6), ["c"])
        for name in ["a", "b"] {
            try s.report(WorkerReport(name: name, round: 2, rounds: 3, steps: 3, tokens: 100, loss: 2, validationLoss: 2.5,
                                      bytesSent: 10, bytesReceived: 10, computeSeconds: 1, waitSeconds: 0, elapsedSeconds: 1,
                                      tokensPerComputeSecond: 100, finished: true), now: 7)
        }
        XCTAssertEqual(s.phase, .finished)
        _ = s.takeEvents()
        let epoch = s.epoch
        let told = refusal { _ = try s.heartbeat("c", now: 20) }
        XCTAssertEqual(told?.status, 409)
        XCTAssertEqual(told?.reason, "the run finished while c was lost (no heartbeat for over 5 s); its last rounds before "
                       + "that are in the model: stop this worker")
        XCTAssertEqual(s.status(now: 20).members.first { $0.name == "c" }?.state, .left, "told, it counts as gone")
        XCTAssertEqual(s.ring.members.map(\.name), ["a", "b"], "no ring of one for it")
        XCTAssertEqual(s.epoch, epoch)
        XCTAssertEqual(s.takeEvents().map(\.detail), ["heard from again after the run finished; told to stop"])
        XCTAssertEqual(refusal { _ = try s.join(request("c"), now: 21) }?.status, 409, "nor can it join again")
    }

    /// Issue 17's stall: a ring broke with nobody lost (a goodbye cascade, a timeout of a slow peer), so no join
    /// or loss brought a new epoch and every worker waited for one until it gave up.
    func testARingThatBrokeWithNobodyLostGetsANewEpochOnceEveryMemberSaysSo() throws {
        var s = CoordinatorState(run: run, token: "secret", heartbeatTimeout: 5)
        for name in ["a", "b", "c"] { _ = try s.join(request(name), now: 0) }
        _ = s.takeEvents()
        let epoch = s.epoch
        XCTAssertEqual(try s.ringBroken(RingBroken(name: "a", epoch: epoch, reason: "b said goodbye"), now: 1).epoch, epoch)
        XCTAssertEqual(try s.ringBroken(RingBroken(name: "a", epoch: epoch, reason: "again"), now: 1.2).epoch, epoch, "one member twice")
        XCTAssertEqual(try s.ringBroken(RingBroken(name: "b", epoch: epoch, reason: "c said goodbye"), now: 1.3).epoch, epoch)
        let view = try s.ringBroken(RingBroken(name: "c", epoch: epoch, reason: "a said goodbye"), now: 1.4)
        XCTAssertEqual(view.epoch, epoch + 1, "every active member's ring broke: form a new one")
        XCTAssertEqual(view.members.map(\.name), ["a", "b", "c"])
        let event = try XCTUnwrap(s.takeEvents().last)
        XCTAssertEqual(event.kind, .ringChanged)
        XCTAssertTrue(event.detail.contains("the ring of epoch \(epoch) broke: a said goodbye"), event.detail)
        // Late reports about the old epoch change nothing.
        XCTAssertEqual(try s.ringBroken(RingBroken(name: "a", epoch: epoch, reason: "late"), now: 2).epoch, epoch + 1)
        XCTAssertEqual(s.expire(now: 2), [])
        XCTAssertEqual(s.epoch, epoch + 1)
    }

    func testABreakOnlySomeReportGetsANewEpochAfterAHeartbeatTimeoutUnlessALossExplainsIt() throws {
        var s = CoordinatorState(run: run, token: "secret", heartbeatTimeout: 5)
        for name in ["a", "b", "c"] { _ = try s.join(request(name), now: 0) }
        let epoch = s.epoch
        _ = try s.ringBroken(RingBroken(name: "a", epoch: epoch, reason: "timed out"), now: 1)
        for t in [2.0, 4.0, 5.5] {
            for name in ["b", "c"] { _ = try s.heartbeat(name, now: t) }
            _ = try s.heartbeat("a", now: t)
            XCTAssertEqual(s.expire(now: t), [])
            XCTAssertEqual(s.epoch, epoch, "within the heartbeat timeout a loss may still explain the break")
        }
        for name in ["a", "b", "c"] { _ = try s.heartbeat(name, now: 6.5) }
        XCTAssertEqual(s.expire(now: 6.5), [])
        XCTAssertEqual(s.epoch, epoch + 1, "no loss came: the waiting members get a new ring")

        // A real loss: the expiry's new epoch is the answer, and no second one follows.
        var t = CoordinatorState(run: run, token: "secret", heartbeatTimeout: 5)
        for name in ["a", "b", "c"] { _ = try t.join(request(name), now: 0) }
        let before = t.epoch
        _ = try t.ringBroken(RingBroken(name: "a", epoch: before, reason: "c lost"), now: 1)
        _ = try t.ringBroken(RingBroken(name: "b", epoch: before, reason: "c lost"), now: 1)
        XCTAssertEqual(t.epoch, before, "c has not said so")
        for name in ["a", "b"] { _ = try t.heartbeat(name, now: 5.5) }
        XCTAssertEqual(t.expire(now: 5.5), ["c"])
        XCTAssertEqual(t.epoch, before + 1)
        for name in ["a", "b"] { _ = try t.heartbeat(name, now: 9) }
        XCTAssertEqual(t.expire(now: 9), [])
        XCTAssertEqual(t.epoch, before + 1)
    }

    func testRunFinishesWhenEveryActiveWorkerReportsItsLastRound() throws {
        var s = CoordinatorState(run: run, token: "secret")
        for name in ["a", "b", "c"] { _ = try s.join(request(name), now: 0) }
        func report(_ name: String, finished: Bool) -> WorkerReport {
            WorkerReport(name: name, round: 1, rounds: 1, steps: 5, tokens: 100, loss: 2, validationLoss: nil, bytesSent: 10,
                         bytesReceived: 10, computeSeconds: 1, waitSeconds: 0.1, elapsedSeconds: 1.1, tokensPerComputeSecond: 100,
                         finished: finished)
        }
        try s.report(report("a", finished: true), now: 1)
        try s.report(report("b", finished: true), now: 1)
        XCTAssertEqual(s.phase, .training)
        try s.report(report("c", finished: true), now: 1)
        XCTAssertEqual(s.phase, .finished)
        XCTAssertEqual(s.status(now: 2).members.compactMap(\.lastReport?.tokens), [100, 100, 100])
    }

    func testCurrentRoundAndTheStateSourceANewcomerIsToldOf() throws {
        var s = CoordinatorState(run: run, token: "secret", heartbeatTimeout: 10)
        for name in ["a", "b", "c"] { _ = try s.join(request(name, port: 9000 + Int(name.unicodeScalars.first!.value)), now: 0) }
        XCTAssertNil(s.round, "nobody reported yet")
        XCTAssertNil(s.ring.stateSource)
        func report(_ name: String, round: Int, epoch: Int) -> WorkerReport {
            var r = WorkerReport(name: name, round: round, rounds: 10, steps: 5 * (round + 1), tokens: 100, loss: 2, validationLoss: nil,
                                 bytesSent: 10, bytesReceived: 10, computeSeconds: 1, waitSeconds: 0.1, elapsedSeconds: 1.1,
                                 tokensPerComputeSecond: 100, finished: false)
            r.epoch = epoch
            return r
        }
        let epoch = s.epoch
        try s.report(report("a", round: 3, epoch: epoch), now: 1)
        try s.report(report("b", round: 4, epoch: epoch), now: 1)
        try s.report(report("c", round: 4, epoch: epoch), now: 1)
        XCTAssertEqual(s.round, 4)
        XCTAssertEqual(s.status(now: 1).round, 4)
        XCTAssertNil(s.ring.stateSource, "the source is chosen when the ring changes, so that one epoch has one")

        // A newcomer hears the round and where the state comes from: b and c are newest, b first by name.
        let reply = try s.join(request("d", port: 9200), now: 2)
        XCTAssertEqual(reply.joinsRunningRing, true)
        XCTAssertEqual(reply.round, 4)
        XCTAssertEqual(reply.stateSource?.name, "b")
        XCTAssertEqual(reply.stateSource?.port, 9000 + 98, "b's data address")
        XCTAssertEqual(s.ring.stateSource, "b")
        try s.report(report("c", round: 5, epoch: epoch), now: 3)
        XCTAssertEqual(s.ring.stateSource, "b", "fixed until the ring changes again")
        XCTAssertEqual(s.ring.round, 5)

        // b is lost: the others re-form and the state comes from the newest survivor.
        for name in ["a", "c", "d"] { _ = try s.heartbeat(name, now: 12) }
        XCTAssertEqual(s.expire(now: 12.5), ["b"])
        XCTAssertEqual(s.ring.stateSource, "c")
        // A report of a newer epoch counts before an older epoch's later round.
        try s.report(report("a", round: 3, epoch: s.epoch), now: 13)
        XCTAssertEqual(s.round, 3, "after a loss the ring went back; its newest epoch's round is the run's")
        try s.leave("c", now: 14)
        XCTAssertEqual(s.ring.stateSource, "a")
    }

    /// Every worker reports the same rejected update: the timeline shows it once, naming the worker.
    func testARejectedUpdateIsOneEventNamingItsWorker() throws {
        var s = CoordinatorState(run: RunDescription(runID: 7, expectedWorkers: 2, configYAML: "", layoutHash: "abc"), token: "secret")
        for name in ["a", "b"] { _ = try s.join(request(name), now: 0) }
        _ = s.takeEvents()
        for name in ["a", "b"] {
            var r = WorkerReport(name: name, round: 4, rounds: 9, steps: 5, tokens: 100, loss: 2, validationLoss: nil, bytesSent: 10,
                                 bytesReceived: 10, computeSeconds: 1, waitSeconds: 0.1, elapsedSeconds: 1.1, tokensPerComputeSecond: 100,
                                 finished: false)
            (r.epoch, r.rejectedUpdate) = (s.epoch, UpdateRejection(round: 4, reason: "not finite", workers: ["b"]))
            try s.report(r, now: 1)
        }
        let events = s.takeEvents()
        XCTAssertEqual(events.map(\.kind), [.updateRejected])
        XCTAssertEqual(events.first?.worker, "b")
        XCTAssertEqual(events.first?.detail, "round 5's update kept out of the shared model (not finite); named: b")
    }

    /// The timeline a dashboard and `tributary report` show: what happened, to whom, in order.
    func testEveryChangeOfMembershipAndProgressIsAnEvent() throws {
        var s = CoordinatorState(run: RunDescription(runID: 7, expectedWorkers: 2, configYAML: "", layoutHash: "abc"),
                                 token: "secret", heartbeatTimeout: 10)
        _ = try s.join(request("a"), now: 0)
        _ = try s.join(request("b"), now: 1)
        var events = s.takeEvents()
        XCTAssertEqual(events.map(\.kind), [.joined, .joined, .trainingStarted])
        XCTAssertEqual(events.map(\.worker), ["a", "b", nil])
        XCTAssertEqual(events.map(\.time), [0, 1, 1])
        XCTAssertTrue(s.takeEvents().isEmpty, "taken events are gone")

        func report(_ name: String, round: Int, epoch: Int, saved: Bool = false, finished: Bool = false) -> WorkerReport {
            var r = WorkerReport(name: name, round: round, rounds: 3, steps: round + 1, tokens: 100, loss: 2, validationLoss: 2.5,
                                 bytesSent: 10, bytesReceived: 10, computeSeconds: 1, waitSeconds: 0.1, elapsedSeconds: 1.1,
                                 tokensPerComputeSecond: 100, finished: finished)
            (r.epoch, r.checkpointSaved) = (epoch, saved ? true : nil)
            return r
        }
        let epoch = s.epoch
        try s.report(report("a", round: 1, epoch: epoch, saved: true), now: 2)
        try s.report(report("b", round: 1, epoch: epoch), now: 2)
        _ = try s.heartbeat("a", now: 12)
        XCTAssertEqual(s.expire(now: 12.5), ["b"])
        _ = try s.heartbeat("b", now: 13)
        events = s.takeEvents()
        XCTAssertEqual(events.map(\.kind), [.checkpoint, .lost, .ringChanged, .returned, .ringChanged])
        XCTAssertEqual(events[0].detail, "shared model saved after round 2 of 3")
        XCTAssertEqual(events[0].round, 1)
        XCTAssertEqual(events[2].detail, "epoch \(epoch + 1): a")
        XCTAssertEqual(events[4].detail, "epoch \(epoch + 2): a, b")

        // After the loss the ring went back to round 1 in the new epoch: a resume, then the end.
        try s.report(report("a", round: 1, epoch: s.epoch), now: 14)
        try s.report(report("a", round: 2, epoch: s.epoch, finished: true), now: 15)
        try s.report(report("b", round: 2, epoch: s.epoch, finished: true), now: 15)
        try s.leave("a", now: 16)
        events = s.takeEvents()
        XCTAssertEqual(events.map(\.kind), [.resumed, .finished, .left])
        XCTAssertEqual(events[0].detail, "went back to round 2 from 2 in ring epoch \(epoch + 2)")
        XCTAssertEqual(events[1].detail, "every worker reported its last round (3), validation loss 2.5000")
    }
}

extension CoordinatorState {
    /// Joins with a credential derived from the name: the tests of membership do not need secrets
    /// (the server draws random ones; `authenticate` is tested on its own).
    mutating func join(_ request: JoinRequest, now: Double) throws(CoordinatorRefusal) -> JoinReply {
        try join(request, credential: "credential-\(request.name)", now: now)
    }
}

extension CoordinatorStateTests {
    /// A coordinator killed after saving its state but before a report's line reached
    /// metrics.jsonl: restored and reconciled with the file, it takes the re-sent report (none
    /// lost); a line that did reach the file makes the re-sent report a duplicate (none twice).
    func testRestoredStateTakesTheRunFolderAsTheRecordOfReports() throws {
        var s = CoordinatorState(run: run, token: "secret")
        _ = try s.join(request("a"), now: 0)
        _ = try s.join(request("b"), now: 1)
        func report(_ name: String, round: Int) -> WorkerReport {
            var r = WorkerReport(name: name, round: round, rounds: 10, steps: round + 1, tokens: 100, loss: 2, validationLoss: nil,
                                 bytesSent: 10, bytesReceived: 10, computeSeconds: 1, waitSeconds: 0.1, elapsedSeconds: 1.1,
                                 tokensPerComputeSecond: 100, finished: false)
            r.epoch = s.epoch
            return r
        }
        var history = RunHistory()
        for round in 0...1 {
            for name in ["a", "b"] {
                XCTAssertTrue(try s.report(report(name, round: round), now: 2))
                history.append(RecordedReport(report: report(name, round: round), receivedAt: 2))
            }
        }
        // Round 2: a's state saved without its line; b's line written, its state not saved.
        XCTAssertTrue(try s.report(report("a", round: 2), now: 3))
        let savedAfterA = s.saved
        history.append(RecordedReport(report: report("b", round: 2), receivedAt: 3))

        var restored = CoordinatorState(restoring: savedAfterA, token: "secret", now: 0)
        restored.reconcile(with: history)
        XCTAssertTrue(try restored.report(report("a", round: 2), now: 1), "a's round 2 is taken again: its line was never written")
        XCTAssertFalse(try restored.report(report("b", round: 2), now: 1), "b's round 2 is in the file already")
        XCTAssertTrue(try restored.report(report("b", round: 3), now: 1))
    }
}
