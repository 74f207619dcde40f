import CoordinationClient
import NIOCore
import NIOPosix
import NIOSSL
import RunTrust
import XCTest

/// The client against a coordinator that stops mid-answer, on a real loopback socket.
final class CoordinatorClientTests: XCTestCase {
    /// The first handler of a connection (next to the socket): closes it under TLS, without a close_notify.
    private final class RawClose: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        private var context: ChannelHandlerContext?
        func handlerAdded(context: ChannelHandlerContext) { self.context = context }
        func close() { context?.close(promise: nil) }
    }

    /// After the handshake: a request arrives, and the connection is cut as a killed process's would be.
    private final class CutOnRequest: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let raw: RawClose
        init(raw: RawClose) { self.raw = raw }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { raw.close() }
    }

    /// A TLS stream cut after its handshake is a coordinator gone before it answered (killed while it
    /// answered a report, then restarted): worth trying again, like a plain closed connection. Taken for
    /// a TLS mismatch (final), it lost that report.
    func testACoordinatorCutOffMidAnswerIsWorthTryingAgain() async throws {
        let authority = try RunAuthority.create(runName: "t")
        let tls = try NIOSSLContext(configuration: authority.serverConfiguration())
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let raw = RawClose()
                    try channel.pipeline.syncOperations.addHandler(raw)
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls))
                    try channel.pipeline.syncOperations.addHandler(CutOnRequest(raw: raw))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { server.close(promise: nil) }
        let client = CoordinatorClient(host: "127.0.0.1", port: try XCTUnwrap(server.localAddress?.port),
                                       trust: try CoordinatorTrust(authorityPEM: authority.certificatePEM))
        do {
            _ = try await client.status()
            XCTFail("a connection cut before the answer is an error")
        } catch let error as CoordinatorClientError {
            XCTAssertFalse(error.isFinal, "\(error)")
            XCTAssertTrue(error.closedUnanswered, "\(error)")
            XCTAssertNil(error.status)
        }
    }
}
