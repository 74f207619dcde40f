import Basics
import ArgumentParser
import Dispatch
import Foundation
import ModelCore
import TensorCore
import Training

/// A checkpoint folder, or a run folder whose newest loadable checkpoint is used.
func checkpointFolder(_ path: String) throws -> URL {
    let url = URL(fileURLWithPath: path)
    if FileManager.default.fileExists(atPath: url.appendingPathComponent("state.json").path) { return url }
    let store = CheckpointStore(directory: url.appendingPathComponent("checkpoints"), keep: 1)
    for candidate in store.checkpoints() where (try? CheckpointStore.readState(at: candidate)) != nil { return candidate }
    throw ValidationError("\(path) is neither a checkpoint folder (with state.json) nor a run folder with checkpoints/")
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Validation loss and perplexity of a checkpoint on its run's validation data."
    )

    @Option(name: .long, help: "A checkpoint folder, or a run folder (its newest checkpoint).")
    var checkpoint: String

    @Option(name: .long, help: "Validation batches to average (default: the run's evaluation.batches).")
    var batches: Int?

    @Option(name: .long, help: "Threads (default: the cores this process may use).")
    var threads = UsableCores.count

    func run() throws {
        try reportingErrors {
            let folder = try checkpointFolder(checkpoint)
            var config = try CheckpointStore.readState(at: folder).config
            config.threads = threads
            if let batches {
                guard batches >= 1 else { throw ValidationError("--batches must be at least 1") }
                config.evaluation.batches = batches
            }
            let trainer = try Trainer(config: config)
            try CheckpointStore.restore(from: folder, into: trainer)
            // Checksums prove the file is what was saved, not that what was saved is a model.
            let parameters = trainer.model.parameters.toArray()
            let broken = parameters.count { !$0.isFinite }
            guard broken == 0 else {
                throw ValidationError("checkpoint \(folder.path) holds \(broken) of \(parameters.count) parameters that are not finite (NaN or "
                    + "infinite): the run diverged before this save; evaluate or resume an earlier checkpoint")
            }
            let loss = try trainer.validationLoss()
            guard loss.isFinite else {
                throw ValidationError("checkpoint \(folder.path) gives a validation loss of \(loss): its parameters are finite but too large to use")
            }
            print("checkpoint \(folder.path) (step \(trainer.step))")
            print(String(format: "validation loss %.4f nats/token, perplexity %.3f, over %d batches of %dx%d",
                         loss, exp(Double(loss)), config.evaluation.batches, config.batchSize, config.sequenceLength))
            if let source = trainer.source {
                print(String(format: "the source's entropy rate is %.4f nats/token (perplexity %.3f)",
                             source.entropyRate, exp(source.entropyRate)))
            }
        }
    }
}

struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Sample tokens from a checkpoint with a key/value cache."
    )

    @Option(name: .long, help: "A checkpoint folder, or a run folder (its newest checkpoint).")
    var checkpoint: String

    @Option(name: .long, help: "Prompt text: encoded with --tokenizer, or as UTF-8 bytes (models with at least 256 tokens).")
    var prompt: String?

    @Option(name: .long, help: "The tokenizer.json the model was trained with (default: the run's, when it can be found).")
    var tokenizer: String?

    @Option(name: .long, help: "Prompt as comma-separated token ids.")
    var promptTokens: String?

    @Option(name: .long) var maxTokens = 64
    @Option(name: .long, help: "0 is greedy.") var temperature: Float = 1
    @Option(name: .long, help: "Sample among the k most likely tokens (0: all).") var topK = 0
    @Option(name: .long, help: "Sample among the most likely tokens covering this probability.") var topP: Float = 1
    @Option(name: .long) var seed: UInt64 = 1

    func validate() throws {
        guard (prompt == nil) != (promptTokens == nil) else { throw ValidationError("give exactly one of --prompt and --prompt-tokens") }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
        guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be 0 or more") }
        guard topK >= 0 else { throw ValidationError("--top-k must not be negative") }
        guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
    }

    func run() throws {
        try reportingErrors {
            let folder = try checkpointFolder(checkpoint)
            let (model, state) = try CheckpointStore.loadModel(from: folder, parallelism: Parallelism(threads: UsableCores.count))
            let vocab = model.config.vocabSize
            let tokenizerURL = tokenizer.map { URL(fileURLWithPath: $0) } ?? (promptTokens == nil ? runTokenizer(state, checkpoint: folder) : nil)
            let bpe = try tokenizerURL.map { try ByteLevelBPE(contentsOf: $0) }
            if let bpe, bpe.vocabularySize > vocab {
                throw ValidationError("the tokenizer has \(bpe.vocabularySize) tokens but the model only \(vocab); is it the run's tokenizer?")
            }
            var tokens: [Int32]
            if let prompt, let bpe {
                tokens = bpe.encode(prompt)
            } else if let prompt {
                guard vocab >= 256 else {
                    throw ValidationError("this model's vocabulary has \(vocab) tokens, too few for bytes; give --tokenizer or --prompt-tokens")
                }
                tokens = prompt.utf8.map { Int32($0) }
            } else {
                let parts = promptTokens!.split(separator: ",").map { Int32($0.trimmingCharacters(in: .whitespaces)) }
                guard !parts.isEmpty, parts.allSatisfy({ $0 != nil && $0! >= 0 && Int($0!) < vocab }) else {
                    throw ValidationError("--prompt-tokens must be comma-separated ids in 0..<\(vocab)")
                }
                tokens = parts.map { $0! }
            }
            guard !tokens.isEmpty, tokens.count < model.config.contextLength else {
                throw ValidationError("the prompt must hold 1..<\(model.config.contextLength) tokens, got \(tokens.count)")
            }
            let options = SamplingOptions(temperature: temperature, topK: topK, topP: topP)
            let (generated, promptSeconds, seconds) = try sampleTokens(model: model, prompt: tokens, maxTokens: maxTokens, options: options, seed: seed)
            if let bpe {
                print(bpe.decode(tokens + generated))
            } else if prompt != nil {
                print(String(decoding: (tokens + generated).filter { $0 < 256 }.map { UInt8($0) }, as: UTF8.self))
            }
            print("tokens: " + generated.map(String.init).joined(separator: ","))
            printError(String(format: "prompt %d tokens in %.3f s; generated %d tokens at %.1f tokens/s", tokens.count,
                              promptSeconds, generated.count, Double(generated.count) / seconds))
        }
    }
}

/// Feeds `prompt` through a key/value-cached decoder, then samples up to `maxTokens` more (fewer
/// when the context fills). Returns them and the seconds spent on the prompt and on sampling.
func sampleTokens(model: GPT, prompt: [Int32], maxTokens: Int, options: SamplingOptions, seed: UInt64) throws
    -> (tokens: [Int32], promptSeconds: Double, seconds: Double) {
    let decoder = GPTDecoder(model: model)
    var rng = SeededGenerator(seed: seed)
    let start = DispatchTime.now().uptimeNanoseconds
    for t in prompt { try decoder.append(t) }
    let promptDone = DispatchTime.now().uptimeNanoseconds
    var generated: [Int32] = []
    while generated.count < maxTokens && decoder.length < model.config.contextLength {
        let next = decoder.logits.buffer.withMemoryRebound(to: Float.self) { options.sample(UnsafeBufferPointer($0), rng: &rng) }
        generated.append(next)
        if decoder.length < model.config.contextLength { try decoder.append(next) }
    }
    let end = DispatchTime.now().uptimeNanoseconds
    return (generated, Double(promptDone - start) / 1e9, Double(end - promptDone) / 1e9)
}
