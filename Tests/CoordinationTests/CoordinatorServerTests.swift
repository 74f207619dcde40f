import Coordination
import CoordinationClient
import CoordinationServer
import Foundation
import Logging
import NIOCore
import RunTrust
import X509
import XCTest

/// The HTTP API on a real loopback socket.
final class CoordinatorServerTests: XCTestCase {
    /// Starts a coordinator on port 0 and returns its client and the serving task.
    /// With `authority`, it serves HTTPS and the client trusts that authority.
    func start(expected: Int = 2, limits: CoordinatorServer.Limits = .init(), authority: RunAuthority? = nil)
        async throws -> (CoordinatorClient, Task<Void, any Error>) {
        let run = RunDescription(runID: 1, expectedWorkers: expected, configYAML: "steps: 1", layoutHash: "abc")
        let coordinator = Coordinator(state: CoordinatorState(run: run, token: "secret"), authority: authority, logger: Logger(label: "test"))
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let task = Task {
            try await CoordinatorServer.run(coordinator, host: "127.0.0.1", port: 0, limits: limits, logger: Logger(label: "test")) { port in
                continuation.yield(port)
            }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else { throw CoordinatorClientError(reason: "server did not start") }
        let trust = try authority.map { try CoordinatorTrust(authorityPEM: $0.certificatePEM) }
        return (CoordinatorClient(host: "127.0.0.1", port: port, trust: trust), task)
    }

    func testJoinHeartbeatStatusAndMetricsOverHTTP() async throws {
        let (client, server) = try await start()
        defer { server.cancel() }
        let a = try await client.join(JoinRequest(token: "secret", name: "a", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000))
        XCTAssertEqual(a.admission, 0)
        XCTAssertEqual(a.run.configYAML, "steps: 1")
        var ring = try await client.heartbeat("a", credential: a.credential)
        XCTAssertFalse(ring.ready)
        let b = try await client.join(JoinRequest(token: "secret", name: "b", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5001))
        ring = try await client.ring()
        XCTAssertTrue(ring.ready)
        XCTAssertEqual(ring.members.map(\.port), [5000, 5001])
        try await client.report(WorkerReport(name: "b", round: 0, rounds: 2, steps: 3, tokens: 300, loss: 3.5, validationLoss: 3.6,
                                             bytesSent: 1234, bytesReceived: 1200, computeSeconds: 2, waitSeconds: 0.5,
                                             elapsedSeconds: 2.5, tokensPerComputeSecond: 150, finished: false), credential: b.credential)
        let status = try await client.status()
        XCTAssertEqual(status.phase, .training)
        XCTAssertEqual(status.members[1].lastReport?.bytesSent, 1234)
        let metrics = try await client.text("/metrics")
        XCTAssertTrue(metrics.contains("tributary_bytes_sent_total{worker=\"b\"} 1234"), metrics)
        XCTAssertTrue(metrics.contains("tributary_validation_loss 3.6"), metrics)
        XCTAssertTrue(metrics.contains("# HELP tributary_bytes_sent_total Bytes the worker sent to peers."), metrics)
        try await client.leave("a", credential: a.credential)
        let after = try await client.status()
        XCTAssertEqual(after.members[0].state, .left)
    }

    func testBadRequestsGetClearFourHundreds() async throws {
        let (client, server) = try await start()
        defer { server.cancel() }
        func failure(_ body: () async throws -> Void) async -> CoordinatorClientError? {
            do { try await body() } catch let error as CoordinatorClientError { return error } catch { XCTFail("\(error)") }
            return nil
        }
        let wrongToken = await failure {
            _ = try await client.join(JoinRequest(token: "nope", name: "a", layoutHash: "abc", dataHost: "h", dataPort: 1))
        }
        XCTAssertEqual(wrongToken?.status, 403)
        XCTAssertTrue(wrongToken?.reason.contains("wrong token") ?? false, wrongToken?.reason ?? "")
        let otherModel = await failure {
            _ = try await client.join(JoinRequest(token: "secret", name: "a", layoutHash: "zzz", dataHost: "h", dataPort: 1))
        }
        XCTAssertEqual(otherModel?.status, 409)
        let malformed = await failure { _ = try await client.exchange("POST", "/v1/join", body: .init(string: "{\"token\": 3")) }
        XCTAssertEqual(malformed?.status, 400)
        XCTAssertTrue(malformed?.reason.contains("malformed JoinRequest") ?? false, malformed?.reason ?? "")
        let missing = await failure { _ = try await client.exchange("POST", "/v1/heartbeat", body: .init(string: "{}")) }
        XCTAssertEqual(missing?.status, 400)
        XCTAssertTrue(missing?.reason.contains("name") ?? false, missing?.reason ?? "")
        let huge = await failure {
            _ = try await client.exchange("POST", "/v1/report", body: .init(string: String(repeating: "x", count: 2 << 20)))
        }
        XCTAssertEqual(huge?.status, 413)
        let unknown = await failure { _ = try await client.text("/nothing-here") }
        XCTAssertEqual(unknown?.status, 404)
        // The server is still there after all of that.
        let status = try await client.status()
        XCTAssertEqual(status.members.count, 0)
    }

    func testPortInUseIsAnError() async throws {
        let (client, server) = try await start()
        defer { server.cancel() }
        let run = RunDescription(runID: 1, expectedWorkers: 1, configYAML: "", layoutHash: "abc")
        let second = Coordinator(state: CoordinatorState(run: run, token: "t"), logger: Logger(label: "test"))
        do {
            try await CoordinatorServer.run(second, host: "127.0.0.1", port: client.port, logger: Logger(label: "test")) { _ in }
            XCTFail("a second server on the same port should not start")
        } catch {
            XCTAssertTrue("\(error)".lowercased().contains("address already in use"), "\(error)")
        }
    }

    func testUnreachableCoordinatorIsAClearError() async throws {
        let client = CoordinatorClient(host: "127.0.0.1", port: 1, trust: nil)
        do {
            _ = try await client.status()
            XCTFail("nothing listens on port 1")
        } catch {
            XCTAssertTrue("\(error)".contains("cannot reach the coordinator at 127.0.0.1:1"), "\(error)")
        }
    }

    /// Without the credential of its join reply, nobody can speak for a member: not end the run
    /// with forged "finished" reports, not revive a lost member, not make it leave.
    func testAMembersRequestsNeedItsCredentialNotJustItsName() async throws {
        let (client, server) = try await start(expected: 1)
        defer { server.cancel() }
        let a = try await client.join(JoinRequest(token: "secret", name: "a", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000))
        var forged = WorkerReport(name: "a", round: 0, rounds: 1, steps: 1, tokens: 1, loss: 1, validationLoss: nil, bytesSent: 0,
                                  bytesReceived: 0, computeSeconds: 0, waitSeconds: 0, elapsedSeconds: 0, tokensPerComputeSecond: 0,
                                  finished: true)
        for credential in [nil, "guess", String(a.credential.dropLast())] {
            do {
                _ = try await client.exchange("POST", "/v1/report", body: ByteBuffer(data: try JSONEncoder().encode(forged)),
                                              credential: credential)
                XCTFail("a report with credential \(credential ?? "none") was taken")
            } catch let error as CoordinatorClientError {
                XCTAssertEqual(error.status, 401, "\(error)")
                XCTAssertTrue(error.reason.contains("credential"), error.reason)
            }
            await XCTAssertThrowsErrorAsync(try await client.heartbeat("a", credential: credential ?? ""))
            await XCTAssertThrowsErrorAsync(try await client.leave("a", credential: credential ?? ""))
        }
        let status = try await client.status()
        XCTAssertEqual(status.phase, .training, "forged reports did not finish the run")
        XCTAssertEqual(status.members[0].state, .active, "a forged leave did not remove the member")
        forged.finished = false
        try await client.report(forged, credential: a.credential)
        let after = try await client.status()
        XCTAssertEqual(after.members[0].lastReport?.round, 0, "its own credential works")
    }

    /// Issue 17: idle sockets stayed open for good, and 300 of them under a 256-descriptor limit made
    /// `/status` time out. Idle connections are now closed, and past the connection limit the rest wait.
    func testIdleSocketsAreClosedAndAFloodOfThemDoesNotStarveTheAPI() async throws {
        var limits = CoordinatorServer.Limits()
        (limits.idleSeconds, limits.maxConnections) = (0.5, 8)
        let (client, server) = try await start(limits: limits)
        defer { server.cancel() }
        let port = client.port
        let sockets = try (0..<20).map { _ in try idleSocket(port: port) }
        defer { for fd in sockets { close(fd) } }
        let started = Date()
        let status = try await client.status()
        XCTAssertEqual(status.phase, .waiting)
        XCTAssertLessThan(Date().timeIntervalSince(started), 10, "the API answers once idle sockets are closed")
        // Every idle socket was closed by the server: reading gives end-of-file, not a timeout.
        for fd in sockets {
            var byte: UInt8 = 0
            XCTAssertEqual(recv(fd, &byte, 1, 0), 0, "an idle connection is closed after \(limits.idleSeconds) s")
        }
    }

    /// Stopping the server while connections come in shuts it down gracefully. It used to cancel the
    /// accept loop, which dropped connections NIO had accepted but not handed over yet, and each dropped
    /// one trapped the whole process (SwiftNIO's NIOAsyncWriter deinit): `local` crashed once as it
    /// stopped its coordinator. A trap here ends the test process.
    func testStoppingWhileConnectionsArriveDoesNotTrap() async throws {
        for _ in 0..<20 {
            let (client, server) = try await start()
            let sockets = try (0..<32).map { _ in try idleSocket(port: client.port) }
            server.cancel()
            _ = await server.result
            for fd in sockets { close(fd) }
        }
    }

    /// A TCP connection to the server that never sends a byte, with a 5 s receive timeout.
    func idleSocket(port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw CoordinatorClientError(reason: "socket() failed") }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw CoordinatorClientError(reason: "connect() failed") }
        return fd
    }

    /// Issue 17: the API over TLS. A join brings the public key of the worker's ring key and gets
    /// it back certified under its name, with the authority; a join without one is refused before
    /// membership changes; a worker that pins the authority by hash fetches it and checks it; a
    /// plain-HTTP client is told which flag it lacks.
    func testOverTLSAJoinIsCertifiedAndTheAuthorityIsPinnedByHash() async throws {
        let authority = try RunAuthority.create(runName: "t")
        let (client, server) = try await start(authority: authority)
        defer { server.cancel() }
        let key = WorkerKey()
        let a = try await client.join(JoinRequest(token: "secret", name: "a", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5000,
                                                  publicKeyPEM: key.publicKeyPEM))
        let certificate = try Certificate(pemEncoded: try XCTUnwrap(a.certificatePEM))
        XCTAssertEqual(RunAuthority.commonName(of: certificate), "a")
        XCTAssertEqual(a.authorityPEM, authority.certificatePEM)
        XCTAssertNoThrow(try PeerTLS(certificatePEM: a.certificatePEM!, key: key, authorityPEM: a.authorityPEM!))

        do {
            _ = try await client.join(JoinRequest(token: "secret", name: "b", layoutHash: "abc", dataHost: "127.0.0.1", dataPort: 5001))
            XCTFail("a join without a key was admitted to a TLS run")
        } catch let error as CoordinatorClientError {
            XCTAssertEqual(error.status, 400)
            XCTAssertTrue(error.reason.contains("carries no public key"), error.reason)
        }
        let members = try await client.status().members.map(\.name)
        XCTAssertEqual(members, ["a"], "the refused join changed nothing")

        let pinned = try await CoordinatorClient.trust(host: "127.0.0.1", port: client.port, fingerprint: authority.fingerprint)
        XCTAssertEqual(pinned.authorityPEM, authority.certificatePEM)
        let other = try RunAuthority.create(runName: "other")
        do {
            _ = try await CoordinatorClient.trust(host: "127.0.0.1", port: client.port, fingerprint: other.fingerprint)
            XCTFail("an authority with another fingerprint was trusted")
        } catch {
            XCTAssertTrue("\(error)".contains("not \(other.fingerprint)"), "\(error)")
        }
        // A client that trusts another authority, and one that speaks plain HTTP, get nothing.
        let stranger = CoordinatorClient(host: "127.0.0.1", port: client.port, trust: try CoordinatorTrust(authorityPEM: other.certificatePEM))
        await XCTAssertThrowsErrorAsync(try await stranger.status())
        do {
            _ = try await CoordinatorClient(host: "127.0.0.1", port: client.port, trust: nil).status()
            XCTFail("plain HTTP was answered by a TLS coordinator")
        } catch {
            XCTAssertTrue("\(error)".contains("give --ca FILE or --ca-hash HASH"), "\(error)")
        }
    }
}

/// `XCTAssertThrowsError` for async expressions.
func XCTAssertThrowsErrorAsync<T>(_ expression: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line) async {
    do {
        _ = try await expression()
        XCTFail("no error thrown", file: file, line: line)
    } catch {}
}
