import Basics
import Foundation
import ModelCore
import TensorCore

/// A checkpoint that cannot be used, and why.
public struct CheckpointError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "checkpoint \(path): \(reason)" }

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
}

/// What a checkpoint records besides tensors: enough to resume bit-identically.
public struct CheckpointState: Codable, Sendable {
    public static let currentFormat = 1
    public var format = CheckpointState.currentFormat
    /// Optimizer steps completed.
    public var step: Int
    /// Position of the training data stream.
    public var trainCursor: Int
    /// `ParameterLayout.hash` in hex.
    public var layoutHash: String
    public var config: TrainConfig
    /// Size and CRC32C of each tensor file, checked on load.
    public var files: [String: FileDigest]
}

/// The checkpoints of one run: `step-NNNNNNNN/` folders holding `model.safetensors` (parameters),
/// `optimizer.safetensors` (the optimizer's state slabs `m.*`, `v.*`) and `state.json`.
///
/// A save writes a temporary folder, fsyncs every file and the folder, then renames it into place,
/// so a crash mid-save leaves the previous checkpoints as they were. The newest `keep` are kept.
public struct CheckpointStore: Sendable {
    public let directory: URL
    public let keep: Int

    public init(directory: URL, keep: Int) {
        self.directory = directory
        self.keep = max(1, keep)
    }

    static let modelFile = "model.safetensors"
    static let optimizerFile = "optimizer.safetensors"
    static let strategyFile = "strategy.safetensors"
    static let stateFile = "state.json"

    /// Saves the trainer's state as `step-<step>`, with a distributed strategy's own state beside
    /// it (`strategy.safetensors`); returns its folder.
    @discardableResult
    public func save(_ trainer: Trainer, strategy: StrategyRecord? = nil) throws -> URL {
        let fm = FileManager.default
        let name = String(format: "step-%08d", trainer.step)
        let final = directory.appendingPathComponent(name)
        let temporary = directory.appendingPathComponent(".\(name).tmp-\(getpid())")
        do {
            try fm.createDirectory(at: directory, withIntermediateDirectories: true)
            try? fm.removeItem(at: temporary)
            try fm.createDirectory(at: temporary, withIntermediateDirectories: false)
            let layout = trainer.model.layout
            func entries(_ slab: FloatSlab, prefix: String) -> [SafeTensors.Entry] {
                layout.tensors.map { t in
                    SafeTensors.Entry(name: prefix + t.name, shape: t.shape,
                                      bytes: UnsafeRawBufferPointer(start: slab.pointer(at: t.offset), count: t.count * 4))
                }
            }
            let meta = ["format": "tributary-checkpoint", "layout_hash": hex16(layout.hash)]
            var files: [String: FileDigest] = [:]
            files[Self.modelFile] = try SafeTensors.write(entries(trainer.model.parameters, prefix: ""), metadata: meta,
                                                           to: temporary.appendingPathComponent(Self.modelFile))
            files[Self.optimizerFile] = try SafeTensors.write(
                entries(trainer.optimizer.m, prefix: "m.") + entries(trainer.optimizer.v, prefix: "v."), metadata: meta,
                to: temporary.appendingPathComponent(Self.optimizerFile))
            if let strategy {
                let vectors = strategy.vectors.sorted { $0.key < $1.key }
                var strategyMeta = meta
                strategyMeta[StrategyRecord.metadataKey] = strategy.json.map { String(decoding: $0, as: UTF8.self) }
                files[Self.strategyFile] = try withRawBuffers(vectors.map(\.value)) { buffers in
                    try SafeTensors.write(zip(vectors, buffers).map { SafeTensors.Entry(name: $0.0.key, shape: [$0.0.value.count], bytes: $0.1) },
                                          metadata: strategyMeta, to: temporary.appendingPathComponent(Self.strategyFile))
                }
            }
            let state = CheckpointState(step: trainer.step, trainCursor: trainer.trainCursor, layoutHash: hex16(layout.hash),
                                        config: trainer.config, files: files)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            try writeSynced(try encoder.encode(state), to: temporary.appendingPathComponent(Self.stateFile))
            try syncDirectory(temporary)
            if fm.fileExists(atPath: final.path) {
                // Never overwrite saved work: move an older folder of the same step aside.
                try fm.moveItem(at: final, to: directory.appendingPathComponent("\(name).replaced-\(Int(Date().timeIntervalSince1970))"))
            }
            try fm.moveItem(at: temporary, to: final)
            try syncDirectory(directory)
        } catch let error as CheckpointError {
            try? fm.removeItem(at: temporary)
            throw error
        } catch {
            try? fm.removeItem(at: temporary)
            throw CheckpointError(path: final.path, reason: "save failed: \(error)")
        }
        prune()
        return final
    }

    /// Checkpoint folders, newest step first.
    public func checkpoints() -> [URL] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("step-") && !$0.contains(".") }
            .sorted(by: >)
            .map { directory.appendingPathComponent($0) }
    }

    private func prune() {
        for old in checkpoints().dropFirst(keep) { try? FileManager.default.removeItem(at: old) }
    }

    /// Loads the newest checkpoint that passes every check into `trainer`. Returns it (nil when
    /// there is none) and the newer ones that were refused, each with the reason.
    public func restoreNewestValid(into trainer: Trainer) -> (loaded: URL?, refused: [(URL, String)]) {
        var refused: [(URL, String)] = []
        for url in checkpoints() {
            do {
                try Self.restore(from: url, into: trainer)
                return (url, refused)
            } catch {
                refused.append((url, "\(error)"))
            }
        }
        return (nil, refused)
    }

    /// Reads and checks `state.json` of a checkpoint folder.
    public static func readState(at url: URL) throws -> CheckpointState {
        let path = url.appendingPathComponent(stateFile)
        guard let data = try? Data(contentsOf: path) else { throw CheckpointError(path: url.path, reason: "no readable \(stateFile)") }
        guard data.count < 1 << 20, let state = try? JSONDecoder().decode(CheckpointState.self, from: data) else {
            throw CheckpointError(path: url.path, reason: "\(stateFile) is damaged")
        }
        guard state.format == CheckpointState.currentFormat else {
            throw CheckpointError(path: url.path, reason: "format \(state.format); this build reads format \(CheckpointState.currentFormat)")
        }
        return state
    }

    /// Checks a checkpoint against `trainer`'s model and data, then loads parameters, moments,
    /// step and data position. Nothing in the trainer changes unless every check passes.
    public static func restore(from url: URL, into trainer: Trainer) throws {
        let state = try readState(at: url)
        let layout = trainer.model.layout
        let ours = trainer.config
        func refuse(_ reason: String) -> CheckpointError { CheckpointError(path: url.path, reason: reason) }
        guard state.layoutHash == hex16(layout.hash), state.config.model == ours.model else {
            throw refuse("it is of another model (layout \(state.layoutHash), \(describe(state.config.model))); this run trains \(describe(ours.model))")
        }
        guard state.config.batchSize == ours.batchSize, state.config.sequenceLength == ours.sequenceLength,
              state.config.gradientAccumulation == ours.gradientAccumulation, state.config.data == ours.data, state.config.seed == ours.seed
        else { throw refuse("its batch shape, data or seed differ from this run's config, so resuming would not continue the same run") }
        guard state.config.optimizer.name == ours.optimizer.name else {
            throw refuse("it holds \(state.config.optimizer.name.rawValue) state and this run uses \(ours.optimizer.name.rawValue); "
                         + "set optimizer.name: \(state.config.optimizer.name.rawValue) to resume it")
        }
        let tensors = try verifiedTensors(at: url, state: state, files: [modelFile, optimizerFile])
        for t in layout.tensors {
            for name in [t.name, "m." + t.name, "v." + t.name] {
                guard let tensor = tensors[name], tensor.dtype == .f32, tensor.shape == t.shape else {
                    throw refuse("tensor \(name) is missing or not f32 of shape \(t.shape)")
                }
            }
        }
        for t in layout.tensors {
            for (prefix, slab) in [("", trainer.model.parameters), ("m.", trainer.optimizer.m), ("v.", trainer.optimizer.v)] {
                tensors[prefix + t.name]!.bytes.withUnsafeBytes { raw in
                    UnsafeMutableRawPointer(slab.pointer(at: t.offset)).copyMemory(from: raw.baseAddress!, byteCount: t.count * 4)
                }
            }
        }
        trainer.restore(step: state.step, trainCursor: state.trainCursor)
    }
}

/// Calls `body` with the raw bytes of every array, all valid at once.
private func withRawBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeRawBufferPointer]) throws -> R) rethrows -> R {
    func nest(_ i: Int, _ acc: [UnsafeRawBufferPointer]) throws -> R {
        guard i < arrays.count else { return try body(acc) }
        return try arrays[i].withUnsafeBytes { try nest(i + 1, acc + [$0]) }
    }
    return try nest(0, [])
}

extension CheckpointStore {
    /// The strategy state saved beside a checkpoint (checked against `state.json`); nil when it has none.
    public static func strategyRecord(at url: URL) throws -> StrategyRecord? {
        let state = try readState(at: url)
        guard state.files[strategyFile] != nil else { return nil }
        let (tensors, metadata) = try verifiedTensorsAndMetadata(at: url, state: state, file: strategyFile)
        var vectors: [String: [Float]] = [:]
        for (name, tensor) in tensors {
            guard tensor.dtype == .f32 else { throw CheckpointError(path: url.path, reason: "\(strategyFile): \(name) is not f32") }
            vectors[name] = tensor.floats
        }
        return StrategyRecord(json: metadata[StrategyRecord.metadataKey].map { Data($0.utf8) }, vectors: vectors)
    }

    /// Checks that every file `state.json` lists is there whole (size and CRC32C), without loading
    /// it: what a resuming worker asks of a state before offering it to its peers.
    public static func verifyFiles(at url: URL) throws {
        let state = try readState(at: url)
        for (file, expected) in state.files {
            let path = url.appendingPathComponent(file)
            guard let data = try? Data(contentsOf: path, options: .alwaysMapped) else {
                throw CheckpointError(path: url.path, reason: "\(file) is missing or unreadable")
            }
            let actual = FileDigest(of: data)
            guard actual == expected else {
                throw CheckpointError(path: url.path, reason: "\(file) does not match its digest in \(stateFile) (damaged or truncated)")
            }
        }
    }

    /// The tensors of `files` in a checkpoint folder, after checking each file's size and CRC32C
    /// against `state.json`.
    static func verifiedTensors(at url: URL, state: CheckpointState, files: [String]) throws -> [String: SafeTensor] {
        var tensors: [String: SafeTensor] = [:]
        for file in files {
            tensors.merge(try verifiedTensorsAndMetadata(at: url, state: state, file: file).tensors) { a, _ in a }
        }
        return tensors
    }

    /// The tensors and metadata of one file of a checkpoint folder, after checking its size and
    /// CRC32C against `state.json`.
    static func verifiedTensorsAndMetadata(at url: URL, state: CheckpointState, file: String) throws
        -> (tensors: [String: SafeTensor], metadata: [String: String]) {
        let path = url.appendingPathComponent(file)
        func refuse(_ reason: String) -> CheckpointError { CheckpointError(path: url.path, reason: reason) }
        guard let data = try? Data(contentsOf: path, options: .alwaysMapped) else { throw refuse("\(file) is missing or unreadable") }
        guard let expected = state.files[file] else { throw refuse("\(stateFile) has no digest for \(file)") }
        let actual = FileDigest(of: data)
        guard actual.bytes == expected.bytes else { throw refuse("\(file) is \(actual.bytes) bytes, expected \(expected.bytes) (truncated?)") }
        guard actual.crc32c == expected.crc32c else {
            throw refuse("\(file) fails its checksum (CRC32C 0x\(String(actual.crc32c, radix: 16)), expected 0x\(String(expected.crc32c, radix: 16)))")
        }
        return try SafeTensors.decode(data, path: path.path)
    }

    /// The model saved in a checkpoint folder (parameters only), for evaluation and generation.
    public static func loadModel(from url: URL, parallelism: Parallelism, maxBatch: Int = 1, maxLength: Int? = nil) throws -> (GPT, CheckpointState) {
        let state = try readState(at: url)
        let model = try GPT(config: state.config.model, maxBatch: maxBatch, maxLength: maxLength ?? state.config.model.contextLength,
                            parallelism: parallelism)
        guard state.layoutHash == hex16(model.layout.hash) else {
            throw CheckpointError(path: url.path, reason: "layout hash \(state.layoutHash) does not match its own config's model")
        }
        let tensors = try verifiedTensors(at: url, state: state, files: [modelFile])
        for t in model.layout.tensors {
            guard let tensor = tensors[t.name], tensor.dtype == .f32, tensor.shape == t.shape else {
                throw CheckpointError(path: url.path, reason: "tensor \(t.name) is missing or not f32 of shape \(t.shape)")
            }
            tensor.bytes.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(model.parameters.pointer(at: t.offset)).copyMemory(from: raw.baseAddress!, byteCount: t.count * 4)
            }
        }
        return (model, state)
    }
}


private func describe(_ c: GPTConfig) -> String {
    "L\(c.layers) C\(c.channels) H\(c.heads) V\(c.vocabSize) T\(c.contextLength)"
}

/// Writes `data` to `url` and fsyncs it.
func writeSynced(_ data: Data, to url: URL) throws {
    guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
        throw CheckpointError(path: url.path, reason: "cannot create file")
    }
    let handle = try FileHandle(forWritingTo: url)
    defer { try? handle.close() }
    try handle.write(contentsOf: data)
    try handle.synchronize()
}

/// fsyncs a directory so that renames and new entries in it survive a crash.
func syncDirectory(_ url: URL) throws {
    let fd = open(url.path, O_RDONLY)
    guard fd >= 0 else { throw CheckpointError(path: url.path, reason: "cannot open folder to sync it") }
    defer { close(fd) }
    guard fsync(fd) == 0 else { throw CheckpointError(path: url.path, reason: "fsync failed (errno \(errno))") }
}

/// A distributed strategy's own state as saved beside a checkpoint: its fields as JSON (integers
/// as integers) and its large vectors (outer momentum, error-feedback residual) as tensors.
/// The strategy layer owns the meaning; a checkpoint only keeps it safe.
public struct StrategyRecord: Sendable, Equatable {
    /// Key of the JSON in `strategy.safetensors`' metadata.
    static let metadataKey = "strategy"
    /// The strategy's fields; nil in checkpoints saved before they were typed (vectors only).
    public var json: Data?
    public var vectors: [String: [Float]]

    public init(json: Data?, vectors: [String: [Float]]) {
        self.json = json
        self.vectors = vectors
    }
}
