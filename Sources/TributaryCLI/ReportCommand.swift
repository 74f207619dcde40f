import ArgumentParser
import Foundation
import RunViews

/// `tributary report RUN`: a finished run's page, to keep or share.
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write a self-contained HTML page of a run folder (loss, throughput, bytes, utilisation, events) or of an experiment's report."
    )

    @Argument(help: "A run folder written by local, coordinator or train, or an experiment's folder.") var folder: String
    @Option(help: "Where to write the page (default: FOLDER/report.html).") var out: String?

    func run() throws {
        try reportingErrors {
            let url = URL(fileURLWithPath: folder)
            var isFolder: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isFolder), isFolder.boolValue else {
                throw ValidationError("\(folder) is not a folder; give a run folder (runs/…) or an experiment's folder")
            }
            print(try RunReportPage.write(folder: url, to: out.map { URL(fileURLWithPath: $0) }).path)
        }
    }
}
