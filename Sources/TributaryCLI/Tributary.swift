import ArgumentParser
import Foundation

@main
struct Tributary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tributary",
        abstract: "Train transformer language models on the hardware you have.",
        subcommands: [TrainCommand.self, EvalCommand.self, GenerateCommand.self, ExportCommand.self, ImportCommand.self, LocalCommand.self, CoordinatorCommand.self, WorkerCommand.self, ExperimentCommand.self, DevicesCommand.self, PlanCommand.self, SimulateCommand.self, TokenizerCommand.self, DataCommand.self, BenchCommand.self, ReportCommand.self,
                      RingWorkerCommand.self]
    )
}
