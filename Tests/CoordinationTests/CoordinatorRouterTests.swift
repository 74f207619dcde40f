import Coordination
import CoordinationServer
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import XCTest

/// The coordinator's routes driven in process, without a socket (`.router` test mode).
/// A JSON request body.
private func jsonBody(_ value: some Encodable) throws -> ByteBuffer { ByteBuffer(data: try JSONEncoder().encode(value)) }

final class CoordinatorRouterTests: XCTestCase {
    func app(expected: Int = 1) -> some ApplicationProtocol {
        let run = RunDescription(runID: 1, expectedWorkers: expected, configYAML: "steps: 1", layoutHash: "abc")
        let coordinator = Coordinator(state: CoordinatorState(run: run, token: "secret"), logger: Logger(label: "test"))
        return Application(router: CoordinatorServer.router(for: coordinator))
    }

    func testJoinHeartbeatAndStatusThroughTheRouter() async throws {
        try await app().test(.router) { client in
            let join = JoinRequest(token: "secret", name: "w0", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000)
            try await client.execute(uri: "/v1/join", method: .post, body: try jsonBody(join)) { response in
                XCTAssertEqual(response.status, .ok)
                let reply = try JSONDecoder().decode(JoinReply.self, from: Data(buffer: response.body))
                XCTAssertEqual(reply.admission, 0)
            }
            try await client.execute(uri: "/v1/heartbeat", method: .post, body: try jsonBody(WorkerName(name: "w0"))) { response in
                let view = try JSONDecoder().decode(RingView.self, from: Data(buffer: response.body))
                XCTAssertTrue(view.ready)
                XCTAssertEqual(view.members.map(\.name), ["w0"])
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                XCTAssertEqual(response.status, .ok)
                XCTAssertTrue(String(buffer: response.body).contains("tributary_"), String(buffer: response.body))
            }
        }
    }

    func testRefusalsAndMalformedBodiesAreClearClientErrors() async throws {
        try await app().test(.router) { client in
            let wrong = JoinRequest(token: "nope", name: "w0", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000)
            try await client.execute(uri: "/v1/join", method: .post, body: try jsonBody(wrong)) { response in
                XCTAssertEqual(response.status, .forbidden)
                XCTAssertTrue(String(buffer: response.body).contains("wrong token"), String(buffer: response.body))
            }
            try await client.execute(uri: "/v1/report", method: .post, body: ByteBuffer(string: "{\"name\": 3}")) { response in
                XCTAssertEqual(response.status, .badRequest)
                XCTAssertTrue(String(buffer: response.body).contains("malformed"), String(buffer: response.body))
            }
            try await client.execute(uri: "/v1/heartbeat", method: .post, body: try jsonBody(WorkerName(name: "stranger"))) { response in
                XCTAssertEqual(response.status.code / 100, 4, "a worker that never joined is refused")
            }
        }
    }
}
