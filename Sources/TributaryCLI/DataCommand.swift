import ArgumentParser
import Dispatch
import Foundation
import Training

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Training data: text files into token shards.",
        subcommands: [DataPrepareCommand.self]
    )
}

struct DataPrepareCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prepare",
        abstract: "Tokenize UTF-8 text files or folders into token shards with a train/validation split (cached by content hash)."
    )

    @Option(name: .long, parsing: .upToNextOption, help: "Text files or folders.")
    var input: [String]

    @Option(name: .long, help: "A byte-level BPE tokenizer.json (see `tributary tokenizer train`).")
    var tokenizer: String

    @Option(name: .long, help: "Output folder for the shards and manifest.json.")
    var out: String

    @Option(name: .long, help: "Fraction of each file's tokens kept for validation.")
    var validationFraction = 0.05

    func validate() throws {
        guard !input.isEmpty else { throw ValidationError("give at least one --input file or folder") }
        guard validationFraction > 0, validationFraction < 1 else { throw ValidationError("--validation-fraction must be in (0, 1)") }
    }

    func run() throws {
        try reportingErrors {
            let start = DispatchTime.now().uptimeNanoseconds
            var preparation = DataPreparation()
            preparation.validationFraction = validationFraction
            let (manifest, cached) = try preparation.prepare(inputs: input, tokenizerURL: URL(fileURLWithPath: tokenizer),
                                                             directory: URL(fileURLWithPath: out))
            let count = { (split: String) in manifest.shards.filter { $0.split == split }.reduce(0) { $0 + $1.tokens } }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print("\(cached ? "up to date" : "prepared"): \(manifest.inputs.count) files -> \(count("train")) train and "
                + "\(count("validation")) validation tokens in \(out) (\(String(format: "%.2f", seconds)) s, content hash \(manifest.contentHash))")
        }
    }
}
