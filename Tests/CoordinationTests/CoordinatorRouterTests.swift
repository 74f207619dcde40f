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
}

/// Collects a response body (the writer is consumed, so it keeps the bytes in a shared box).
private final class CollectedBody: ResponseBodyWriter, Sendable {
    private let bytes = Mutex(ByteBuffer())
    var text: String { bytes.withLock { String(buffer: $0) } }
    func write(_ buffer: ByteBuffer) async throws { bytes.withLock { var b = buffer; $0.writeBuffer(&b) } }
    func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
