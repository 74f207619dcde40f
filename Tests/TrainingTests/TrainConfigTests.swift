import ModelCore
import Training
import XCTest

final class TrainConfigTests: XCTestCase {
    func assertConfigError(_ yaml: String, field: String, mentions: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try TrainConfig.load(yaml: yaml), file: file, line: line) { error in
            guard let e = error as? ConfigError else { return XCTFail("not a ConfigError: \(error)", file: file, line: line) }
            XCTAssertEqual(e.field, field, "\(e)", file: file, line: line)
            XCTAssertTrue(e.description.contains(mentions), "\(e)", file: file, line: line)
        }
    }

    func testDefaultsAndOverrides() throws {
        XCTAssertEqual(try TrainConfig.load(yaml: ""), TrainConfig())
        let c = try TrainConfig.load(yaml: """
            model: {vocabSize: 97, contextLength: 32, layers: 3, heads: 5, channels: 40}
            batchSize: 3
            sequenceLength: 16
            optimizer: {learningRate: 0.01, warmupSteps: 0}
            data: {markovVocabulary: 50}
            """)
        XCTAssertEqual(c.model, GPTConfig(vocabSize: 97, contextLength: 32, layers: 3, heads: 5, channels: 40))
        XCTAssertNil(c.modelPreset)
        XCTAssertEqual(c.batchSize, 3)
        XCTAssertEqual(c.optimizer.learningRate, 0.01)
        XCTAssertEqual(c.optimizer.beta2, 0.95)
        XCTAssertEqual(try TrainConfig.load(yaml: "model: gpt2Small\nsequenceLength: 256").model, .gpt2Small)
    }

    func testResolvedYAMLRoundTrips() throws {
        var c = TrainConfig()
        c.optimizer.learningRate = 3e-3
        c.model = GPTConfig(vocabSize: 300, contextLength: 64, layers: 1, heads: 2, channels: 8)
        c.modelPreset = nil
        let yaml = try c.yaml()
        XCTAssertTrue(yaml.contains("learningRate: 3e-3") || yaml.contains("learningRate: 0.003"), yaml)
        XCTAssertEqual(try TrainConfig.load(yaml: yaml), c)
        c.optimizer.name = .muon
        c.optimizer.muonMomentum = 0.9
        c.strategy.outerLearningRate = 0.8
        XCTAssertEqual(try TrainConfig.load(yaml: try c.yaml()), c)
    }

    func testUnknownKeysAreNamed() {
        assertConfigError("batchSize: 4\nbatchsize: 5", field: "batchsize", mentions: "did you mean 'batchSize'")
        assertConfigError("optimizer: {learningrate: 0.1}", field: "optimizer.learningrate", mentions: "learningRate")
        assertConfigError("model: {vocabSize: 9, contextLength: 8, layers: 1, heads: 1, channels: 4, dropout: 0.1}",
                          field: "model.dropout", mentions: "unknown key")
    }

    func testBadValuesAreNamed() {
        assertConfigError("batchSize: -2", field: "batchSize", mentions: "must be positive, got -2")
        assertConfigError("model: {vocabSize: 64, contextLength: 8, layers: 1, heads: 3, channels: 16}",
                          field: "model.heads", mentions: "must divide channels (16)")
        assertConfigError("model: {vocabSize: 64, contextLength: 8, layers: -1, heads: 1, channels: 16}",
                          field: "model.layers", mentions: "must be positive")
        assertConfigError("model: {vocabSize: 64, contextLength: 8, layers: 1, heads: 1}",
                          field: "model.channels", mentions: "missing")
        assertConfigError("model: gpt3", field: "model", mentions: "unknown preset 'gpt3'")
        assertConfigError("sequenceLength: 65", field: "sequenceLength", mentions: "exceeds the model's context length 64")
        assertConfigError("steps: lots", field: "steps", mentions: "expected a value of type Int")
        assertConfigError("data: {markovVocabulary: 300}", field: "data.markovVocabulary", mentions: "2...256")
        assertConfigError("optimizer: {beta2: 1.5}", field: "optimizer.beta2", mentions: "[0, 1)")
        assertConfigError("optimizer: {name: lion}", field: "optimizer.name", mentions: "use adamw or muon")
        assertConfigError("optimizer: {name: muon, newtonSchulzSteps: 0}", field: "optimizer.newtonSchulzSteps", mentions: "1...20")
        assertConfigError("strategy: {outerMomentum: 1}", field: "strategy.outerMomentum", mentions: "[0, 1)")
        assertConfigError("strategy: {fragments: 0}", field: "strategy.fragments", mentions: "1...64")
        assertConfigError("strategy: {momentSync: -1}", field: "strategy.momentSync", mentions: "number of rounds")
        assertConfigError("strategy: {overlap: true, overlapRounds: 3}", field: "strategy.overlapRounds", mentions: "must be 1 or 2")
        assertConfigError("strategy: {overlapRounds: 2}", field: "strategy.overlapRounds", mentions: "needs overlap: true")
        assertConfigError("data: {order: random}", field: "data.order", mentions: "must be shuffled or sequential, got 'random'")
        assertConfigError("batchSize: [1", field: "", mentions: "not valid YAML")
    }

    func testScheduleWarmsUpThenDecaysToFloor() {
        let s = LearningRateSchedule(peak: 1, minRatio: 0.1, warmupSteps: 10, totalSteps: 110)
        XCTAssertEqual(s.rate(at: 0), 0.1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 9), 1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 10), 1, accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 59) , 0.1 + 0.9 * Float(0.5 * (1 + cos(Double.pi * 49 / 99))), accuracy: 1e-6)
        XCTAssertEqual(s.rate(at: 109), 0.1, accuracy: 1e-6)
        for step in 10..<109 { XCTAssertGreaterThanOrEqual(s.rate(at: step), s.rate(at: step + 1)) }
    }
}
