import Coordination
import CoordinationServer
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import XCTest

/// The coordinator's routes driven in process, through the router's responder: no socket, no
/// HTTP client (HummingbirdTesting would bring an HTTP client and TLS into the build for this).
final class CoordinatorRouterTests: XCTestCase {
    /// A responder over a fresh coordinator of `expected` workers.
    func responder(expected: Int = 1) -> some HTTPResponder<BasicRequestContext> {
        let run = RunDescription(runID: 1, expectedWorkers: expected, configYAML: "steps: 1", layoutHash: "abc")
        let coordinator = Coordinator(state: CoordinatorState(run: run, token: "secret"), logger: Logger(label: "test"))
        return CoordinatorServer.router(for: coordinator).buildResponder()
    }

    /// Sends one request; returns the status and the body as text.
    func send(_ responder: some HTTPResponder<BasicRequestContext>, _ method: HTTPRequest.Method, _ path: String,
              body: String = "", credential: String? = nil) async throws -> (status: HTTPResponse.Status, body: String) {
        var head = HTTPRequest(method: method, scheme: "http", authority: "localhost", path: path)
        if let credential { head.headerFields[.authorization] = "Bearer \(credential)" }
        let request = Request(head: head, body: RequestBody(buffer: ByteBuffer(string: body)))
        let context = BasicRequestContext(source: .init(channel: EmbeddedChannel(), logger: Logger(label: "test")))
        let response = try await responder.respond(to: request, context: context)
        let collected = CollectedBody()
        try await response.body.write(collected)
        return (response.status, collected.text)
    }

    func json(_ value: some Encodable) throws -> String { String(decoding: try JSONEncoder().encode(value), as: UTF8.self) }

    func testJoinHeartbeatAndMetricsThroughTheRouter() async throws {
        let router = responder()
        let join = try json(JoinRequest(token: "secret", name: "w0", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000))
        let joined = try await send(router, .post, "/v1/join", body: join)
        XCTAssertEqual(joined.status, .ok, joined.body)
        let reply = try JSONDecoder().decode(JoinReply.self, from: Data(joined.body.utf8))
        XCTAssertEqual(reply.admission, 0)
        let anonymous = try await send(router, .post, "/v1/heartbeat", body: try json(WorkerName(name: "w0")))
        XCTAssertEqual(anonymous.status, .unauthorized, "a name alone does not speak for a member")
        let ring = try await send(router, .post, "/v1/heartbeat", body: try json(WorkerName(name: "w0")), credential: reply.credential)
        let view = try JSONDecoder().decode(RingView.self, from: Data(ring.body.utf8))
        XCTAssertTrue(view.ready)
        XCTAssertEqual(view.members.map(\.name), ["w0"])
        let brokenBody = try json(RingBroken(name: "w0", epoch: view.epoch, reason: "a peer said goodbye"))
        let unsigned = try await send(router, .post, "/v1/ring-broken", body: brokenBody)
        XCTAssertEqual(unsigned.status, .unauthorized)
        let broken = try await send(router, .post, "/v1/ring-broken", body: brokenBody, credential: reply.credential)
        XCTAssertEqual(broken.status, .ok, broken.body)
        XCTAssertEqual(try JSONDecoder().decode(RingView.self, from: Data(broken.body.utf8)).epoch, view.epoch + 1,
                       "the only member's ring broke: a new epoch")
        let metrics = try await send(router, .get, "/metrics")
        XCTAssertEqual(metrics.status, .ok)
        XCTAssertTrue(metrics.body.contains("tributary_"), metrics.body)
    }

    func testRefusalsAndMalformedBodiesAreClearClientErrors() async throws {
        let router = responder()
        let wrong = try await send(router, .post, "/v1/join",
                                   body: try json(JoinRequest(token: "nope", name: "w0", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000)))
        XCTAssertEqual(wrong.status, .forbidden)
        XCTAssertTrue(wrong.body.contains("wrong token"), wrong.body)
        let malformed = try await send(router, .post, "/v1/report", body: "{\"name\": 3}")
        XCTAssertEqual(malformed.status, .badRequest)
        XCTAssertTrue(malformed.body.contains("malformed"), malformed.body)
        let stranger = try await send(router, .post, "/v1/heartbeat", body: try json(WorkerName(name: "stranger")))
        XCTAssertEqual(stranger.status.code / 100, 4, "a worker that never joined is refused: \(stranger.body)")
    }

    /// The run id and layout hash are what a data-plane hello needs: only the token's holders get
    /// them (issue 17: they were served to anyone and a forged hello was welcomed as a peer).
    func testTheRunsDescriptionNeedsTheTokenAndNothingElseGivesAwayTheRunID() async throws {
        let router = responder()
        let anonymous = try await send(router, .get, "/v1/run")
        XCTAssertEqual(anonymous.status, .unauthorized)
        XCTAssertTrue(anonymous.body.contains("needs the run's token"), anonymous.body)
        let guessed = try await send(router, .get, "/v1/run", credential: "guess")
        XCTAssertEqual(guessed.status, .unauthorized)
        let described = try await send(router, .get, "/v1/run", credential: "secret")
        XCTAssertEqual(described.status, .ok)
        let run = try JSONDecoder().decode(RunDescription.self, from: Data(described.body.utf8))
        XCTAssertEqual(run.runID, 1)

        let join = try json(JoinRequest(token: "secret", name: "w0", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000))
        _ = try await send(router, .post, "/v1/join", body: join)
        for path in ["/status", "/metrics", "/v1/dashboard", "/v1/ring"] {
            let body = try await send(router, .get, path).body
            XCTAssertFalse(body.contains("\"runID\"") || body.contains("runID="), "\(path) shows the run id: \(body)")
        }
        let status = try await send(router, .get, "/status").body
        XCTAssertTrue(status.contains("\"runFingerprint\""), status)
    }

    func report(_ name: String, round: Int, sent: Int, elapsed: Double, wait: Double, finished: Bool = false) -> WorkerReport {
        var r = WorkerReport(name: name, round: round, rounds: 3, steps: round + 1, tokens: 64 * (round + 1), loss: 2.5, validationLoss: 2.75,
                             bytesSent: sent, bytesReceived: sent, computeSeconds: elapsed - wait, waitSeconds: wait, elapsedSeconds: elapsed,
                             tokensPerComputeSecond: 100, finished: finished)
        r.epoch = 1
        return r
    }

    /// swift-metrics through swift-prometheus: counters that only rise (a restarted worker's totals
    /// start again from zero), round-time histograms, events by kind.
    func testMetricsAddWhatEachReportAddsAndTimeTheRounds() async throws {
        let router = responder()
        let join = try json(JoinRequest(token: "secret", name: "w0", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000))
        let reply = try JSONDecoder().decode(JoinReply.self, from: Data(try await send(router, .post, "/v1/join", body: join).body.utf8))
        for r in [report("w0", round: 0, sent: 1000, elapsed: 2, wait: 0.5), report("w0", round: 1, sent: 3000, elapsed: 5, wait: 1.5)] {
            let sent = try await send(router, .post, "/v1/report", body: try json(r), credential: reply.credential)
            XCTAssertEqual(sent.status, .noContent, sent.body)
        }
        var metrics = try await send(router, .get, "/metrics").body
        XCTAssertTrue(metrics.contains("tributary_bytes_sent_total{worker=\"w0\"} 3000"), metrics)
        XCTAssertTrue(metrics.contains("# TYPE tributary_round_duration_seconds histogram"), metrics)
        // One round followed another: 3 s long, 1 s of it waiting.
        XCTAssertTrue(metrics.contains("tributary_round_duration_seconds_count{worker=\"w0\"} 1"), metrics)
        XCTAssertTrue(metrics.contains("tributary_round_duration_seconds_sum{worker=\"w0\"} 3.0"), metrics)
        XCTAssertTrue(metrics.contains("tributary_allreduce_duration_seconds_sum{worker=\"w0\"} 1.0"), metrics)
        XCTAssertTrue(metrics.contains("tributary_events_total{kind=\"joined\"} 1"), metrics)
        XCTAssertTrue(metrics.contains("tributary_workers{state=\"active\"} 1"), metrics)

        // The worker restarts and joins again: its totals count from zero, the counter goes on rising.
        let again = try JSONDecoder().decode(JoinReply.self, from: Data(try await send(router, .post, "/v1/join", body: join).body.utf8))
        var restarted = report("w0", round: 2, sent: 500, elapsed: 1, wait: 0.2)
        restarted.epoch = 2
        _ = try await send(router, .post, "/v1/report", body: try json(restarted), credential: again.credential)
        metrics = try await send(router, .get, "/metrics").body
        XCTAssertTrue(metrics.contains("tributary_bytes_sent_total{worker=\"w0\"} 3500"), metrics)
        XCTAssertTrue(metrics.contains("tributary_events_total{kind=\"rejoined\"} 1"), metrics)
    }

    /// The dashboard: one page with nothing from elsewhere, and its live view of server-sent events,
    /// which ends with the run.
    func testTheDashboardPageAndItsLiveSnapshots() async throws {
        let router = responder()
        let page = try await send(router, .get, "/")
        XCTAssertEqual(page.status, .ok)
        XCTAssertTrue(page.body.contains("new EventSource(\"v1/live\")"), "the page listens to the live view")
        for external in ["http://", "https://", "src=", "@import", "url("] {
            XCTAssertFalse(page.body.contains(external), "the page must work offline, but it has \(external)")
        }

        let join = try json(JoinRequest(token: "secret", name: "w0", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000))
        let reply = try JSONDecoder().decode(JoinReply.self, from: Data(try await send(router, .post, "/v1/join", body: join).body.utf8))
        let last = report("w0", round: 2, sent: 4096, elapsed: 3, wait: 1, finished: true)
        _ = try await send(router, .post, "/v1/report", body: try json(last), credential: reply.credential)
        // The run finished: the live view sends the snapshot and ends (a running one would go on).
        let live = try await send(router, .get, "/v1/live")
        XCTAssertEqual(live.status, .ok)
        let events = live.body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        XCTAssertEqual(events.count, 1, live.body)
        XCTAssertTrue(events[0].hasPrefix("event: snapshot\ndata: "), events[0])
        let snapshot = try JSONSerialization.jsonObject(with: Data(events[0].dropFirst("event: snapshot\ndata: ".count).utf8)) as? [String: Any]
        XCTAssertEqual(snapshot?["phase"] as? String, "finished")
        XCTAssertEqual(snapshot?["bytesSent"] as? Int, 4096)
        XCTAssertEqual(snapshot?["validationLoss"] as? Double, 2.75)
        let members = snapshot?["members"] as? [[String: Any]]
        XCTAssertEqual(members?.first?["name"] as? String, "w0")
        XCTAssertEqual(members?.first?["round"] as? Int, 3, "rounds count from 1 on the page")
        let charts = snapshot?["charts"] as? [String: String]
        XCTAssertEqual(charts?.keys.sorted(), ["bytes", "loss", "throughput", "utilisation"])
        XCTAssertTrue(charts?["loss"]?.hasPrefix("<svg") == true)
        let timeline = (snapshot?["events"] as? [[String: Any]])?.map { $0["kind"] as? String }
        XCTAssertEqual(timeline, ["finished", "training-started", "joined"], "newest first")
    }
}

/// Collects a response body (the writer is consumed, so it keeps the bytes in a shared box).
private final class CollectedBody: ResponseBodyWriter, Sendable {
    private let bytes = Mutex(ByteBuffer())
    var text: String { bytes.withLock { String(buffer: $0) } }
    func write(_ buffer: ByteBuffer) async throws { bytes.withLock { var b = buffer; $0.writeBuffer(&b) } }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
