import Foundation
import Training

/// The run `tributary local` trains when no config is given: a 1.3M-parameter GPT on the
/// fortunes corpus, DiLoCo with Muon inside (`experiment scaling` found it the closest to DDP),
/// time rounds, int8 pseudo-gradients, and the outer settings chosen from the run's shape. Muon's
/// learning rate is the best of a sweep of this run's shape (session 19, 4 workers at equal speeds,
/// steps rounds, unlimited links: 0.002/0.004/0.006/0.009/0.012 → 5.001/4.814/4.769/4.712/4.713).
public let defaultLocalConfig = """
    model: {vocabSize: 4096, contextLength: 128, layers: 4, heads: 4, channels: 128}
    batchSize: 8
    sequenceLength: 128
    steps: 600
    optimizer: {name: muon, learningRate: \(defaultLearningRate(.muon)), warmupSteps: 40}
    evaluation: {interval: 100, batches: 8}
    checkpoint: {interval: 200, keep: 2}
    strategy: {name: diloco, codec: int8, innerSteps: 20, round: time}
    """

/// The default run's peak learning rate for `optimizer` (`tributary local --optimizer` without a config or a
/// learning rate): Muon's is the default config's; AdamW keeps the 0.002 the default run had with it
/// (Muon's 0.009 is for orthogonalised steps, whose scale AdamW's are not).
public func defaultLearningRate(_ optimizer: OptimizerConfig.Name) -> Float {
    switch optimizer {
    case .muon: 0.009
    case .adamw: 0.002
    }
}

/// Where Debian's fortunes package puts its corpus.
public let defaultCorpus = "/usr/share/games/fortunes"

/// The default config on the default corpus, prepared in `runs`/fortunes-data (once); returns
/// the config and the tokenizer of its data.
public func defaultLocalRun(corpus: String = defaultCorpus, runs: URL, log: (String) -> Void) throws -> (TrainConfig, URL) {
    var config = try TrainConfig.load(yaml: defaultLocalConfig, source: "the default local config")
    let data = runs.appendingPathComponent("fortunes-data")
    let tokenizer = try prepareDefaultCorpus(corpus: corpus, into: data, vocabulary: config.model.vocabSize, log: log)
    config.data.prepared = data.path
    return (config, tokenizer)
}

/// Trains a BPE on `corpus` and tokenizes it, both cached in `folder`; returns the tokenizer.
public func prepareDefaultCorpus(corpus: String, into folder: URL, vocabulary: Int, log: (String) -> Void) throws -> URL {
    let tokenizer = folder.appendingPathComponent("corpus-tokenizer.json")
    if !FileManager.default.fileExists(atPath: tokenizer.path) {
        guard FileManager.default.fileExists(atPath: corpus) else {
            throw LocalRunError(reason: "the corpus \(corpus) is missing; run tools/install-deps.sh (it installs Debian's fortunes) or give --config")
        }
        log("training a \(vocabulary)-token BPE on \(corpus) (once; cached in \(folder.path))")
        var trainer = BPETrainer(vocabularySize: vocabulary)
        for file in try TextFiles.expand([corpus]) { trainer.add(try TextFiles.read(file)) }
        let bpe = try trainer.train()
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try bpe.save(to: tokenizer)
    }
    let (manifest, cached) = try DataPreparation().prepare(inputs: [corpus], tokenizerURL: tokenizer, directory: folder)
    if !cached {
        let counts = Dictionary(grouping: manifest.shards, by: \.split).mapValues { $0.reduce(0) { $0 + $1.tokens } }
        log("prepared \(corpus): \(counts["train"] ?? 0) train and \(counts["validation"] ?? 0) validation tokens in \(folder.path)")
    }
    return folder.appendingPathComponent(DataPreparation.tokenizerFile)
}
