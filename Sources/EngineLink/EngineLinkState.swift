import Strategies

/// Where the engine link is, and what each message from the engine means there. Pure: the driver
/// (`ExternalEngine`) reads and writes the socket; this decides.
public struct EngineLinkState: Sendable, Equatable {
    public enum Phase: Sendable, Equatable {
        /// Connected; the engine's `hello` has not come yet.
        case awaitingHello
        /// Hello checked; `ready` sent.
        case ready
        /// `round` sent for this round with this many steps; waiting for `trained`.
        case training(round: Int, steps: Int)
        /// `finished` or `error` sent: nothing more is expected.
        case closed
    }

    public private(set) var phase = Phase.awaitingHello

    public init() {}

    /// The engine's hello: its layout, if the version is this build's.
    public mutating func hello(_ message: EngineMessage) throws -> [EngineTensor] {
        guard phase == .awaitingHello else { throw unexpected(message) }
        guard message.kind == .hello else { throw unexpected(message) }
        guard message.version == EngineMessage.version else {
            throw EngineLinkError("the engine speaks version \(message.version.map(String.init) ?? "none") of the engine link; "
                + "this tributary speaks \(EngineMessage.version): install the Python package from the same tributary checkout")
        }
        guard let layout = message.layout, !layout.isEmpty else {
            throw EngineLinkError("the engine's hello has no layout: list its parameters (name and shape) in buffer order")
        }
        guard layout.count <= EngineMessage.maxTensors else {
            throw EngineLinkError("the engine's layout lists \(layout.count) tensors; at most \(EngineMessage.maxTensors)")
        }
        for t in layout where t.name.isEmpty || t.name.utf8.count > 256 || t.shape.isEmpty || t.shape.contains(where: { $0 < 1 }) {
            throw EngineLinkError("the engine's layout has a bad tensor '\(t.name.prefix(64))' \(t.shape): names are 1-256 bytes, shapes positive")
        }
        phase = .ready
        return layout
    }

    /// Sending `round`: the engine must be idle (ready, or done with the round before).
    public mutating func startRound(_ round: Int, steps: Int) throws {
        guard phase == .ready else { throw EngineLinkError("round \(round + 1) started while the engine was still busy (\(phase))") }
        phase = .training(round: round, steps: steps)
    }

    /// The engine's answer to a round: what it trained, checked against what it was asked.
    public mutating func trained(_ message: EngineMessage) throws -> InnerRound {
        guard case let .training(round, steps) = phase, message.kind == .trained else { throw unexpected(message) }
        guard message.round == round else {
            throw EngineLinkError("the engine answered round \(message.round.map { String($0 + 1) } ?? "none"); it was asked for round \(round + 1)")
        }
        guard let done = message.steps, (1...steps).contains(done) else {
            throw EngineLinkError("the engine trained \(message.steps.map(String.init) ?? "no") steps in round \(round + 1); it was asked for 1...\(steps)")
        }
        guard let loss = message.loss, loss.isFinite else {
            throw EngineLinkError("the engine's loss for round \(round + 1) is \(message.loss.map { "\($0)" } ?? "missing"): it diverged or did not say")
        }
        let seconds = message.seconds ?? 0
        guard seconds.isFinite, seconds >= 0 else { throw EngineLinkError("the engine's compute seconds for round \(round + 1) are \(seconds)") }
        phase = .ready
        return InnerRound(steps: done, meanLoss: loss, computeSeconds: seconds)
    }

    /// Sending `finished` or `error`: the link is over.
    public mutating func close() { phase = .closed }

    private func unexpected(_ message: EngineMessage) -> EngineLinkError {
        if message.kind == .error { return EngineLinkError("the engine stopped: \(message.message ?? "no reason given")") }
        let expecting: String
        switch phase {
        case .awaitingHello: expecting = "hello"
        case .ready: expecting = "nothing (no round was started)"
        case let .training(round, _): expecting = "trained for round \(round + 1)"
        case .closed: expecting = "nothing (the link is closed)"
        }
        return EngineLinkError("the engine sent '\(message.kind.rawValue)' where the link expects \(expecting)")
    }
}

/// What went wrong on the engine link, said for the person running it.
public struct EngineLinkError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}
