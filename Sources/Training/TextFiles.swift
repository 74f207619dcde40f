import Foundation

/// Reading the user's text files: folders are walked, every file must be valid UTF-8.
public enum TextFiles {
    /// Files named by `paths`: files as given, folders walked recursively in sorted order (hidden
    /// entries, and files that look binary — a NUL byte in their first 4 KB, like fortune's .dat
    /// indexes — are skipped there; a binary file named directly is still an error on read).
    public static func expand(_ paths: [String]) throws -> [URL] {
        var out: [URL] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw TokenizerError(reason: "input \(path) does not exist")
            }
            if isDirectory.boolValue {
                let root = URL(fileURLWithPath: path)
                let walker = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
                var files: [URL] = []
                while let url = walker?.nextObject() as? URL {
                    if (try? url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile) == true, !looksBinary(url) { files.append(url) }
                }
                out += files.sorted { $0.path < $1.path }
            } else {
                out.append(URL(fileURLWithPath: path))
            }
        }
        return out
    }

    static func looksBinary(_ url: URL) -> Bool {
        guard let handle = try? FileHandle(forReadingFrom: url) else { return false }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 4096)) ?? Data()
        return head.contains(0)
    }

    /// The file's text; invalid UTF-8 is an error naming the file and the byte offset.
    public static func read(_ url: URL) throws -> String {
        guard let data = try? Data(contentsOf: url) else { throw TokenizerError(reason: "cannot read \(url.path)") }
        if let offset = firstInvalidUTF8(data) {
            throw TokenizerError(reason: "\(url.path) is not valid UTF-8 at byte offset \(offset); convert it (e.g. iconv -f latin1 -t utf-8) or leave it out")
        }
        return String(decoding: data, as: UTF8.self)
    }

    /// Offset of the first byte that does not start a valid UTF-8 sequence, or nil.
    static func firstInvalidUTF8(_ data: Data) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = data.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case let .valid(encoded): offset += encoded.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }
}
