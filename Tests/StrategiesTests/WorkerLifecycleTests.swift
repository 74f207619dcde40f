import Collectives
import Strategies
import XCTest

/// The worker's life replayed as events with made-up times: no coordinator, no sockets, no sleeps.
final class WorkerLifecycleTests: XCTestCase {
    typealias Life = WorkerLifecycle<ContinuousClock.Instant>
    let t0 = ContinuousClock.now

    func sighting(epoch: Int, ready: Bool = true, members: Int = 3, listed: Bool = true) -> Life.RingSighting {
        .init(epoch: epoch, ready: ready, members: members, expected: 3, listsThisWorker: listed)
    }

    func lost(_ peer: String = "w2", round: UInt64? = 7) -> RingFailure {
        RingFailure(kind: .lost, peer: peer, round: round, detail: "connection reset")
    }

    func testAFreshWorkerWaitsForTheRingFormsItTrainsAndLeaves() {
        var life = Life(resume: false, joinsRunningRing: false)
        XCTAssertEqual(life.start(now: t0), .pollRing(after: .zero))
        XCTAssertEqual(life.ringSeen(sighting(epoch: 1, ready: false, members: 2), now: t0), .pollRing(after: .milliseconds(200)))
        XCTAssertEqual(life.ringSeen(sighting(epoch: 1), now: t0 + .seconds(1)), .formRing(epoch: 1, patience: .seconds(600)))
        XCTAssertEqual(life.ringFormed(), .train(epoch: 1, resume: false, takesState: false))
        XCTAssertEqual(life.trainingEnded(.finished, completedARound: true, now: t0 + .seconds(60)), .leave)
    }

    func testARingThatDoesNotFillInTimeIsGivenUpOnWithTheCount() {
        var policy = Life.Policy()
        policy.patience = .seconds(30)
        var life = Life(policy: policy, resume: false, joinsRunningRing: false)
        _ = life.start(now: t0)
        XCTAssertEqual(life.ringSeen(sighting(epoch: 1, ready: false, members: 2), now: t0 + .seconds(29)), .pollRing(after: .milliseconds(200)))
        XCTAssertEqual(life.ringSeen(sighting(epoch: 1, ready: false, members: 2), now: t0 + .seconds(30)),
                       .giveUp(.ringDidNotFill(members: 2, expected: 3)))
    }

    func testALostPeerLeadsToANewerRingAndAResumeAndTheCoordinatorMustDropIt() {
        var life = Life(resume: false, joinsRunningRing: false)
        _ = life.start(now: t0)
        _ = life.ringSeen(sighting(epoch: 1), now: t0)
        _ = life.ringFormed()
        XCTAssertEqual(life.trainingEnded(.peerFailed(lost()), completedARound: true, now: t0 + .seconds(10)), .pollRing(after: .zero))
        XCTAssertEqual(life.reforms, 1)
        XCTAssertEqual(life.minimumEpoch, 2)
        // The old ring's view is ready but of the old epoch: it is not formed again.
        XCTAssertEqual(life.ringSeen(sighting(epoch: 1), now: t0 + .seconds(11)), .pollRing(after: .milliseconds(200)))
        XCTAssertEqual(life.ringSeen(sighting(epoch: 2, members: 2), now: t0 + .seconds(12)), .formRing(epoch: 2, patience: .seconds(10)),
                       "after a loss, a short patience: a peer busy with the old ring is retried with the newest view")
        XCTAssertEqual(life.ringFormed(), .train(epoch: 2, resume: true, takesState: false))
        // A coordinator that never drops the lost worker: give up once patience runs out.
        _ = life.trainingEnded(.peerFailed(lost()), completedARound: true, now: t0 + .seconds(20))
        XCTAssertEqual(life.ringSeen(sighting(epoch: 2), now: t0 + .seconds(20 + 600)), .giveUp(.lostWorkerNotDropped(epoch: 2)))
    }

    func testANewcomerTakesStateUntilItHasCompletedARound() {
        var life = Life(resume: false, joinsRunningRing: true)
        _ = life.start(now: t0)
        XCTAssertEqual(life.ringSeen(sighting(epoch: 4), now: t0), .formRing(epoch: 4, patience: .seconds(30)))
        XCTAssertEqual(life.ringFormed(), .train(epoch: 4, resume: true, takesState: true))
        // The ring broke before the newcomer completed a round: it still has nothing of its own.
        _ = life.trainingEnded(.peerFailed(lost()), completedARound: false, now: t0)
        _ = life.ringSeen(sighting(epoch: 5), now: t0)
        XCTAssertEqual(life.ringFormed(), .train(epoch: 5, resume: true, takesState: true))
        // Once it completed a round, what it remembers is as good as anyone's.
        _ = life.trainingEnded(.ringChanged, completedARound: true, now: t0)
        _ = life.ringSeen(sighting(epoch: 6), now: t0)
        XCTAssertEqual(life.ringFormed(), .train(epoch: 6, resume: true, takesState: false))
    }

    func testFailedFormsAreRetriedAfterAPauseUntilTheBoundThenTheLastFailureIsTheReason() {
        var policy = Life.Policy()
        policy.maxReforms = 2
        var life = Life(policy: policy, resume: false, joinsRunningRing: false)
        _ = life.start(now: t0)
        for attempt in 1...2 {
            _ = life.ringSeen(sighting(epoch: 1), now: t0)
            XCTAssertEqual(life.formFailed(lost(round: nil), runFinished: false, now: t0), .pollRing(after: .milliseconds(500)), "attempt \(attempt)")
        }
        _ = life.ringSeen(sighting(epoch: 1), now: t0)
        let failure = lost("w1", round: nil)
        XCTAssertEqual(life.formFailed(failure, runFinished: false, now: t0), .giveUp(.tooManyReforms(last: "\(failure)")))
    }

    func testAWorkerThatMissedTheWholeRunOrWasDroppedStops() {
        var life = Life(resume: false, joinsRunningRing: true)
        _ = life.start(now: t0)
        _ = life.ringSeen(sighting(epoch: 3), now: t0)
        XCTAssertEqual(life.formFailed(lost(round: nil), runFinished: true, now: t0), .giveUp(.runFinishedWithoutThisWorker))

        var dropped = Life(resume: true, joinsRunningRing: false)
        _ = dropped.start(now: t0)
        XCTAssertEqual(dropped.ringSeen(sighting(epoch: 3, listed: false), now: t0), .giveUp(.notInRing))
    }

    func testReformsAfterLossesAreBoundedAndJoinsDoNotCount() {
        var policy = Life.Policy()
        policy.maxReforms = 2
        var life = Life(policy: policy, resume: false, joinsRunningRing: false)
        _ = life.start(now: t0)
        // Two losses and any number of joins, in any order: still training.
        for (epoch, end) in [Life.TrainingEnd.ringChanged, .peerFailed(lost()), .ringChanged, .ringChanged, .peerFailed(lost())].enumerated() {
            _ = life.ringSeen(sighting(epoch: epoch + 1), now: t0)
            _ = life.ringFormed()
            XCTAssertEqual(life.trainingEnded(end, completedARound: true, now: t0), .pollRing(after: .zero), "epoch \(epoch + 1)")
        }
        XCTAssertEqual(life.reforms, 2)
        _ = life.ringSeen(sighting(epoch: 6), now: t0)
        _ = life.ringFormed()
        XCTAssertEqual(life.trainingEnded(.peerFailed(lost("w9")), completedARound: true, now: t0),
                       .giveUp(.tooManyReforms(last: "\(lost("w9"))")), "the third loss is one too many")
    }
}
