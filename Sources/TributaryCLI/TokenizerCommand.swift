import ArgumentParser
import Dispatch
import Foundation
import Training

struct TokenizerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenizer",
        abstract: "Byte-level BPE tokenizers in Hugging Face's tokenizer.json layout.",
        subcommands: [TokenizerTrainCommand.self]
    )
}

struct TokenizerTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Learn a byte-level BPE from UTF-8 text files or folders and save tokenizer.json."
    )

    @Option(name: .long, parsing: .upToNextOption, help: "Text files or folders.")
    var input: [String]

    @Option(name: .long, help: "Vocabulary size, including the 256 byte symbols.")
    var vocabSize = 8192

    @Option(name: .long, help: "Where to write tokenizer.json.")
    var out = "tokenizer.json"

    func validate() throws {
        guard !input.isEmpty else { throw ValidationError("give at least one --input file or folder") }
        guard (256...(1 << 20)).contains(vocabSize) else { throw ValidationError("--vocab-size must be in 256...\(1 << 20), got \(vocabSize)") }
    }

    func run() throws {
        try reportingErrors {
            let start = DispatchTime.now().uptimeNanoseconds
            var trainer = BPETrainer(vocabularySize: vocabSize)
            var bytes = 0
            for file in try TextFiles.expand(input) {
                let text = try TextFiles.read(file)
                bytes += text.utf8.count
                trainer.add(text)
            }
            let bpe = try trainer.train()
            try bpe.save(to: URL(fileURLWithPath: out))
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            print(String(format: "learned %d tokens from %.1f MB in %.1f s; wrote %@", bpe.vocabularySize, Double(bytes) / 1e6, seconds, out))
        }
    }
}
