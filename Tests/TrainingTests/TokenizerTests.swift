import Foundation
import Training
import XCTest

final class TokenizerTests: XCTestCase {

    /// The same ids as Hugging Face `tokenizers` for the same tokenizer.json (tools/tokenizer_reference.py).
    func testMatchesHuggingFaceTokenizers() throws {
        let tokenizer = try ByteLevelBPE(contentsOf: try fixture("bpe600.tokenizer.json"))
        XCTAssertEqual(tokenizer.vocabularySize, 600)
        let cases = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: try fixture("bpe600.cases.json"))) as? [[String: Any]])
        XCTAssertGreaterThan(cases.count, 200)
        for c in cases {
            let text = try XCTUnwrap(c["text"] as? String)
            let expected = try XCTUnwrap(c["ids"] as? [Int]).map(Int32.init)
            XCTAssertEqual(tokenizer.encode(text), expected, "\"\(text)\"")
            XCTAssertEqual(tokenizer.decode(expected), text)
        }
    }

    func testRoundTripIsLosslessForAnyUTF8() throws {
        let tokenizer = try ByteLevelBPE(contentsOf: try fixture("bpe600.tokenizer.json"))
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let scalars = (0..<Int.random(in: 0...40, using: &rng)).compactMap { _ -> Character? in
                let ranges: [ClosedRange<UInt32>] = [0x20...0x7E, 0x09...0x0D, 0xA0...0x2FF, 0x3040...0x30FF, 0x1F300...0x1F6FF, 0x4E00...0x4FFF]
                return Unicode.Scalar(UInt32.random(in: ranges.randomElement(using: &rng)!, using: &rng)).map(Character.init)
            }
            let text = String(scalars)
            XCTAssertEqual(tokenizer.decode(tokenizer.encode(text)), text)
        }
    }

    func testBadTokenizerFilesAreClearErrors() throws {
        let dir = try temporaryDirectory()
        let cases: [(String, String)] = [
            ("{}", "not a tokenizer.json with a BPE model"),
            ("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", "lacks the byte-level symbol"),
        ]
        for (json, message) in cases {
            let url = dir.appendingPathComponent("t.json")
            try json.write(to: url, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try ByteLevelBPE(contentsOf: url)) { XCTAssertTrue("\($0)".contains(message), "\($0)") }
        }
    }
}

final class TokenizerTrainingTests: XCTestCase {

    /// Training is deterministic: the same text gives the committed tokenizer.json, and
    /// Hugging Face `tokenizers` loads that file and encodes exactly as we do.
    func testTrainedTokenizerIsDeterministicAndLoadsInTokenizers() throws {
        var trainer = BPETrainer(vocabularySize: 800)
        trainer.add(try TextFiles.read(try fixture("gpl-3.txt")))
        let trained = try trainer.train()
        let out = try temporaryDirectory().appendingPathComponent("bpe.json")
        try trained.save(to: out)
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: try fixture("swift-bpe800.tokenizer.json")))

        let cases = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: try fixture("swift-bpe800.cases.json"))) as? [[String: Any]])
        for c in cases {
            let text = try XCTUnwrap(c["text"] as? String)
            XCTAssertEqual(trained.encode(text), try XCTUnwrap(c["ids"] as? [Int]).map(Int32.init), "\"\(text)\"")
        }
        // Merges compress: fewer tokens than bytes on English text.
        let text = try TextFiles.read(try fixture("gpl-3.txt"))
        XCTAssertLessThan(Double(trained.encode(text).count), Double(text.utf8.count) / 2.5)
    }

    func testInvalidUTF8NamesTheFileAndOffset() throws {
        let url = try temporaryDirectory().appendingPathComponent("bad.txt")
        try Data([0x61, 0x62, 0xC3, 0xA9, 0x63, 0xFF, 0x64]).write(to: url)
        XCTAssertThrowsError(try TextFiles.read(url)) { error in
            XCTAssertTrue("\(error)".contains("\(url.path) is not valid UTF-8 at byte offset 5"), "\(error)")
        }
    }
}
