import Coordination
import Foundation
import Logging
import ModelCore
import NIOCore
import NIOPosix
import Strategies
import Training

/// The worker's side of the engine link: an engine of its own (a Python process) connected on a local
/// socket trains DiLoCo's inner steps on a shared buffer of float32 parameters (`SharedParameterBuffer`);
/// per round the worker copies the round's starting parameters in and the trained ones out, nothing else.
public final class ExternalEngine: InnerEngine {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private let name: String
    private let logger: Logger
    private var state = EngineLinkState()
    private var pending = ByteBuffer()
    private var buffer: SharedParameterBuffer?
    private var lastReport: WorkerReport?

    init(inbound: NIOAsyncChannelInboundStream<ByteBuffer>, outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>, name: String,
         logger: Logger) {
        self.inbound = inbound.makeAsyncIterator()
        self.outbound = outbound
        self.name = name
        self.logger = logger
    }

    /// Listens on the Unix socket `path`, takes the first engine that connects within `patience`, runs `body`
    /// with it, and tells the engine why when `body` fails. The socket file is removed once an engine connected.
    public static func serve<T>(path: String, name: String, patience: Duration = .seconds(120), logger: Logger,
                                _ body: (ExternalEngine) async throws -> T) async throws -> T {
        guard path.utf8.count < 100 else { throw EngineLinkError("the engine socket path \(path) is too long for a Unix socket (under 100 bytes)") }
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        logger.info("waiting for the engine on \(path)")
        let connection = try await withThrowingTaskGroup(of: NIOAsyncChannel<ByteBuffer, ByteBuffer>?.self) { group in
            group.addTask {
                try await server.executeThenClose { connections in
                    var iterator = connections.makeAsyncIterator()
                    return try await iterator.next()
                }
            }
            group.addTask {
                try await Task.sleep(for: patience)
                return nil
            }
            defer { group.cancelAll() }
            let first = try await group.next() ?? nil
            try? await server.channel.close()
            return first
        }
        unlink(path)
        guard let connection else {
            throw EngineLinkError("no engine connected to \(path) within \(patience.components.seconds) s")
        }
        return try await connection.executeThenClose { inbound, outbound in
            let engine = ExternalEngine(inbound: inbound, outbound: outbound, name: name, logger: logger)
            do {
                return try await body(engine)
            } catch {
                try? await engine.send(.error("\(error)"))
                throw error
            }
        }
    }

    public func begin(layout: ParameterLayout, config: TrainConfig) async throws {
        var run = EngineMessage(kind: .run)
        run.config = config
        run.model = config.model
        run.rounds = config.strategy.rounds(steps: config.steps)
        try await send(run)
        let hello = try await receive()
        let theirs = try state.hello(hello)
        if let mismatch = layout.mismatch(with: theirs) {
            throw EngineLinkError("the engine's parameters are not the run's model (layers \(config.model.layers), channels \(config.model.channels), "
                + "vocabulary \(config.model.vocabSize), context \(config.model.contextLength)): \(mismatch)")
        }
        logger.info("engine connected: \(hello.engine ?? "unnamed"), \(layout.count) parameters")
        let shared = try SharedParameterBuffer(count: layout.count, name: name)
        buffer = shared
        var ready = EngineMessage(kind: .ready)
        ready.buffer = shared.path
        ready.count = layout.count
        try await send(ready)
    }

    public func trainRound(_ round: Int, steps: Int, budgetSeconds: Double?, parameters: UnsafeMutableBufferPointer<Float>)
        async throws -> InnerRound {
        guard let shared = buffer, shared.values.count == parameters.count else {
            throw EngineLinkError("the engine link has no buffer of \(parameters.count) values (begin was not called)")
        }
        _ = shared.values.update(fromContentsOf: parameters)
        try state.startRound(round, steps: steps)
        var message = EngineMessage(kind: .round)
        message.round = round
        message.steps = steps
        message.seconds = budgetSeconds
        message.report = lastReport
        try await send(message)
        let trained = try state.trained(try await receive())
        _ = parameters.update(fromContentsOf: shared.values)
        return trained
    }

    public func roundReported(_ report: WorkerReport) {
        lastReport = report
    }

    public func runFinished(_ report: WorkerReport, parameters: UnsafeBufferPointer<Float>) async throws {
        if let shared = buffer, shared.values.count == parameters.count { _ = shared.values.update(fromContentsOf: parameters) }
        var message = EngineMessage(kind: .finished)
        message.report = report
        try await send(message)
        state.close()
        // The engine reads the final model from the buffer before it lets go: wait for it to close the link,
        // since the buffer's file is removed with this object.
        while (try? await inbound.next()) != nil {}
    }

    /// Writes one message as a line.
    func send(_ message: EngineMessage) async throws {
        var line = try JSONEncoder().encode(message)
        line.append(UInt8(ascii: "\n"))
        try await outbound.write(ByteBuffer(bytes: line))
    }

    /// Reads the next line from the engine as a message.
    func receive() async throws -> EngineMessage {
        while true {
            if let newline = pending.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let length = newline - pending.readerIndex
                let line = pending.readBytes(length: length)!
                pending.moveReaderIndex(forwardBy: 1)
                pending.discardReadBytes()
                do {
                    return try JSONDecoder().decode(EngineMessage.self, from: Data(line))
                } catch {
                    throw EngineLinkError("the engine sent a line that is not a link message (\(error)): \(String(decoding: line.prefix(120), as: UTF8.self))")
                }
            }
            guard pending.readableBytes <= EngineMessage.maxLineBytes else {
                throw EngineLinkError("the engine sent a line over \(EngineMessage.maxLineBytes) bytes")
            }
            guard var chunk = try await inbound.next() else {
                throw EngineLinkError("the engine closed its connection (it stopped or crashed)")
            }
            pending.writeBuffer(&chunk)
        }
    }
}
