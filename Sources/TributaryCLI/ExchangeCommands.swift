import ArgumentParser
import Foundation
import ModelCore
import TensorCore
import Training

/// Model formats other tools read.
enum ExchangeFormat: String, ExpressibleByArgument, CaseIterable {
    /// Hugging Face `transformers` GPT-2 (`GPT2LMHeadModel`).
    case hf
}

/// The tokenizer a checkpoint's run trained with: the copy `data prepare` keeps beside the
/// shards, or the one `import` put in the run folder (two levels above the checkpoint).
func runTokenizer(_ state: CheckpointState, checkpoint: URL) -> URL? {
    var candidates = [checkpoint.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("tokenizer.json")]
    if let prepared = state.config.data.prepared {
        candidates.insert(URL(fileURLWithPath: prepared).appendingPathComponent(DataPreparation.tokenizerFile), at: 0)
    }
    return candidates.first { FileManager.default.fileExists(atPath: $0.path) }
}

/// Refuses to write into a folder that already holds files, so no earlier export is lost.
func requireEmptyOrAbsent(_ url: URL, flag: String) throws {
    let existing = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
    guard existing.isEmpty else { throw ValidationError("\(url.path) already holds files; give \(flag) a new folder") }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a checkpoint as a Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer.json)."
    )

    @Option(name: .long, help: "Output format: hf (transformers GPT2LMHeadModel).") var format: ExchangeFormat = .hf
    @Option(name: .long, help: "A checkpoint folder, or a run folder (its newest checkpoint).") var checkpoint: String
    @Option(name: .long, help: "tokenizer.json to include (default: the one beside the run's prepared data).") var tokenizer: String?
    @Argument(help: "Folder to create.") var out: String

    func run() throws {
        try reportingErrors {
            let folder = try checkpointFolder(checkpoint)
            let destination = URL(fileURLWithPath: out)
            try requireEmptyOrAbsent(destination, flag: "OUT")
            let (model, state) = try CheckpointStore.loadModel(from: folder, parallelism: .serial)
            let tokenizerURL = tokenizer.map { URL(fileURLWithPath: $0) } ?? runTokenizer(state, checkpoint: folder)
            if let tokenizerURL {
                let bpe = try ByteLevelBPE(contentsOf: tokenizerURL)
                guard bpe.vocabularySize <= model.config.vocabSize else {
                    throw ValidationError("the tokenizer has \(bpe.vocabularySize) tokens but the model only \(model.config.vocabSize); is it the run's tokenizer?")
                }
            }
            try HuggingFaceGPT2.export(config: model.config, parameters: UnsafeBufferPointer(model.parameters.buffer),
                                       tokenizer: tokenizerURL, to: destination)
            print("exported \(folder.path) (step \(state.step)) to \(destination.path)")
            if tokenizerURL == nil { printError("note: no tokenizer.json written; give --tokenizer to include one") }
        }
    }
}

struct ImportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Turn a Hugging Face GPT-2 folder into a Tributary run folder with one checkpoint."
    )

    @Option(name: .long, help: "Input format: hf (transformers GPT2LMHeadModel).") var format: ExchangeFormat = .hf
    @Argument(help: "The Hugging Face model folder (config.json, model.safetensors, optional tokenizer.json).") var input: String
    @Option(name: .long, help: "Run folder to create.") var out: String

    func run() throws {
        try reportingErrors {
            let source = URL(fileURLWithPath: input)
            let destination = URL(fileURLWithPath: out)
            try requireEmptyOrAbsent(destination, flag: "--out")
            let (model, parameters) = try HuggingFaceGPT2.load(from: source)
            var config = TrainConfig()
            config.model = model
            config.modelPreset = GPTConfig.presets.first { $0.value == model }?.key
            config.sequenceLength = min(config.sequenceLength, model.contextLength)
            config.data.markovVocabulary = min(config.data.markovVocabulary, model.vocabSize)
            config.data.markovBranching = min(config.data.markovBranching, config.data.markovVocabulary)
            config.batchSize = 1
            let trainer = try Trainer(config: config)
            parameters.withUnsafeBufferPointer { trainer.model.parameters.buffer.baseAddress!.update(from: $0.baseAddress!, count: $0.count) }
            let saved = try CheckpointStore(directory: destination.appendingPathComponent("checkpoints"), keep: 1).save(trainer)
            let tokenizer = source.appendingPathComponent("tokenizer.json")
            if FileManager.default.fileExists(atPath: tokenizer.path) {
                try FileManager.default.copyItem(at: tokenizer, to: destination.appendingPathComponent("tokenizer.json"))
            }
            print("imported \(source.path) (L\(model.layers) C\(model.channels) H\(model.heads) V\(model.vocabSize) T\(model.contextLength)) as \(saved.path)")
        }
    }
}
