import Coordination
import ModelCore
import Training

/// One line of the engine link: JSON objects, one per line, over a local socket between `tributary worker
/// --engine-socket` and an engine of its own (PyTorch, say). The parameters themselves never travel on the
/// socket: both sides map one file of float32 values (`ready.buffer`).
///
/// worker → engine: `run` (the run's config), then after the engine's `hello` (its layout) `ready` (the buffer),
/// `round` (train from the buffer) for each round, `finished`
/// (the final shared model is in the buffer), or `error` (why the worker stops; the link closes after it).
public struct EngineMessage: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        case run, hello, ready, round, trained, finished, error
    }

    public var kind: Kind
    /// run: the run's config (batch, optimizer, data), which the engine's inner steps follow.
    public var config: TrainConfig?
    /// run: the model's dimensions (the config may name a preset instead).
    public var model: GPTConfig?
    /// run: how many rounds the run has.
    public var rounds: Int?
    /// hello: the link's protocol version (`EngineMessage.version`).
    public var version: Int?
    /// hello: what the engine is, for logs ("pytorch 2.5 cuda").
    public var engine: String?
    /// hello: the engine's parameters in buffer order.
    public var layout: [EngineTensor]?
    /// ready: the file both sides map, `count` float32 values.
    public var buffer: String?
    public var count: Int?
    /// round, trained: which round; round: how many steps to train; trained: how many it trained.
    public var round: Int?
    public var steps: Int?
    /// round: with timed rounds, the compute seconds the engine may spend (it stops before a step that would
    /// overrun them; `steps` is then only a bound); trained: seconds it spent computing.
    public var seconds: Double?
    /// trained: mean training loss of the round's steps.
    public var loss: Double?
    /// round: the report of the round before (loss, validation, bytes); finished: the last one.
    public var report: WorkerReport?
    /// error: what went wrong and how to fix it.
    public var message: String?

    public init(kind: Kind) { self.kind = kind }

    /// The protocol version this build speaks.
    public static let version = 1
    /// Longest line either side accepts (a layout of tens of thousands of tensors fits).
    public static let maxLineBytes = 4 << 20
    /// Most tensors a layout may list.
    public static let maxTensors = 100_000

    /// An `error` message.
    public static func error(_ message: String) -> EngineMessage {
        var m = EngineMessage(kind: .error)
        m.message = message
        return m
    }
}

/// One named tensor of an engine's layout, as in `ParameterLayout` (Hugging Face GPT-2 names without the
/// `transformer.` prefix, matrices stored (out, in)).
public struct EngineTensor: Codable, Sendable, Equatable {
    public var name: String
    public var shape: [Int]

    public init(name: String, shape: [Int]) {
        self.name = name
        self.shape = shape
    }
}

extension ParameterLayout {
    /// Why an engine's layout is not this one (the first tensor that differs), or nil when they match.
    public func mismatch(with engine: [EngineTensor]) -> String? {
        for (index, ours) in tensors.enumerated() {
            guard index < engine.count else {
                return "the engine's layout ends after \(engine.count) tensors; the run's continues with \(ours.name) \(ours.shape)"
            }
            let theirs = engine[index]
            if theirs.name != ours.name || theirs.shape != ours.shape {
                return "tensor \(index) is \(ours.name) \(ours.shape) in the run's model but \(theirs.name) \(theirs.shape) in the engine's"
            }
        }
        if engine.count > tensors.count {
            return "the engine's layout has \(engine.count - tensors.count) tensors more than the run's model, from \(engine[tensors.count].name)"
        }
        return nil
    }
}
