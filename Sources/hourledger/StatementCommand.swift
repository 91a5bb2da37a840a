import ArgumentParser
import Crypto
import Foundation
import HourLedgerUseCases

/// `hourledger statement`: a contract period's signed statement, its check with the public key alone, and the keys.
struct StatementCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "statement", abstract: "Write a contract period's statement, signed with an Ed25519 key; check one; make a key pair.",
        subcommands: [Write.self, Verify.self, Keygen.self], defaultSubcommand: Write.self)

    struct Write: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Write the signed statement of one contract period (JSON or CSV).")
        @OptionGroup var options: ConfigOption
        @Option(help: "The contract id.") var contract: String
        @Option(help: "current, previous, YYYY-MM or YYYY-MM-DD (a day inside the period).") var period: String = "previous"
        @Option(help: "The Ed25519 private key file (base64; see `statement keygen`).") var key: String
        @Option(help: "json or csv.") var format: String = "json"
        @Option(help: "Write here instead of to standard output (refuses to overwrite).") var out: String?

        func run() async throws {
            guard ["json", "csv"].contains(format) else { throw CLIError(message: "--format must be json or csv") }
            let signingKey = try wrap { try StatementSignature.privateKey(file: key) }
            let (_, ledger) = try options.ledger()
            let statement = try wrap { try ledger.statement(contractID: contract, period: period) }
            let bytes = try format == "json" ? StatementSignature.signedJSON(statement, key: signingKey) : StatementSignature.signedCSV(statement, key: signingKey)
            guard let out else {
                FileHandle.standardOutput.write(Data(bytes))
                return
            }
            try write(bytes, to: out)
            print("wrote \(out): contract \(statement.contractID), period \(statement.periodKey), \(statement.lines.count) lines, "
                  + "\(statement.totals.usedSeconds) s used\(statement.closed ? "" : " (the period still runs)")")
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a signed statement with the public key alone.")
        @Argument(help: "The statement file (JSON or CSV).") var file: String
        @Option(name: .customLong("public-key"), help: "The Ed25519 public key file (base64).") var publicKey: String

        func run() async throws {
            let key = try wrap { try StatementSignature.publicKey(file: publicKey) }
            guard let data = FileManager.default.contents(atPath: file) else { throw CLIError(message: "cannot read \(file)") }
            let verified = try wrap { try StatementSignature.verify(Array(data), publicKey: key) }
            print("\(file): OK, signed by the given key: contract \(verified.contractID), period \(verified.periodKey), \(verified.lines) lines, "
                  + "\(verified.usedSeconds) s used")
        }
    }

    struct Keygen: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make an Ed25519 key pair for statements (the private file is mode 0600).")
        @Option(name: .customLong("private-key"), help: "Where to write the private key.") var privateKey: String
        @Option(name: .customLong("public-key"), help: "Where to write the public key, to hand to customers and auditors.") var publicKey: String

        func run() async throws {
            let key = Curve25519.Signing.PrivateKey()
            try write(Array((key.rawRepresentation.base64EncodedString() + "\n").utf8), to: privateKey, mode: 0o600)
            try write(Array((key.publicKey.rawRepresentation.base64EncodedString() + "\n").utf8), to: publicKey, mode: 0o644)
            print("wrote \(privateKey) (keep it secret) and \(publicKey)")
        }
    }
}

/// `hourledger verify`: the books' chains recomputed, and the ledger's entries against them.
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Recompute the books' hash chains and check every entry against them; names the first broken link.")
    @OptionGroup var options: ConfigOption
    @Option(help: "A signed JSON statement whose books head must still be in its contract's chain (repeatable).") var statement: [String] = []

    func run() async throws {
        let (_, ledger) = try options.ledger()
        var report = try ledger.verifyBooks()
        if !statement.isEmpty {
            let records = try ledger.read { try $0.bookRecords() }
            for file in statement {
                guard let data = FileManager.default.contents(atPath: file) else { throw CLIError(message: "cannot read \(file)") }
                report.problems += try wrap { try StatementSignature.headProblems(Array(data), file: file, records: records) }
            }
        }
        for problem in report.problems { print("BROKEN \(problem)") }
        guard report.problems.isEmpty else {
            throw CLIError(message: "the books do not verify: \(report.problems.count) problem\(report.problems.count == 1 ? "" : "s")")
        }
        print("the books verify: \(report.contracts) chain\(report.contracts == 1 ? "" : "s"), \(report.records) records, "
              + "\(report.entries) entries as the books say")
    }
}

private func wrap<T>(_ work: () throws -> T) throws -> T {
    do { return try work() } catch let error as StatementError { throw CLIError(message: error.description) }
}

/// Creates `path` (never overwriting an existing file) with `mode`, and writes `bytes`.
private func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
    guard fd >= 0 else { throw CLIError(message: "cannot create \(path): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeBytes { Foundation.write(fd, $0.baseAddress, $0.count) }
        guard written > 0 else { throw CLIError(message: "cannot write \(path): \(String(cString: strerror(errno)))") }
        offset += written
    }
}
