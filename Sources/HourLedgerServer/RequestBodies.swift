import Foundation
import HourLedgerCore
import Hummingbird

// The JSON bodies the API reads, as `Decodable` types. Decoding refuses a wrong type or a missing field by name
// (`{"error": "ticket must be an integer", "field": "ticket"}`); bounds that need the clock are checked after.

/// `POST /api/v1/timers`
struct StartTimerRequest: Decodable {
    var ticket: BodyInt
    var technician: BodyInt?
}

/// `POST /api/v1/timers/{id}/{action}`: what a stop records; ignored by pause and resume.
struct TimerActionRequest: Decodable {
    var kind: BodyKind?
    var note: BodyText?
    var category: BodyInt?
}

/// `POST /api/v1/entries`
struct NewEntryRequest: Decodable {
    var ticket: BodyInt
    var technician: BodyInt?
    var startedAt: BodyText
    var durationSeconds: BodyInt
    var description: BodyText?
    var billable: Bool?
    var category: BodyInt?

    enum CodingKeys: String, CodingKey {
        case ticket, technician, description, billable, category
        case startedAt = "started_at", durationSeconds = "duration_seconds"
    }
}

/// `PATCH /api/v1/entries/{key}`: only what is given changes.
struct EditEntryRequest: Decodable {
    var durationSeconds: BodyInt?
    var startedAt: BodyText?
    var billable: Bool?
    var note: BodyText?
    var reason: BodyText?

    enum CodingKeys: String, CodingKey {
        case billable, note, reason
        case durationSeconds = "duration_seconds", startedAt = "started_at"
    }
}

/// Why: a deletion, a discarded write-back (`reason`), an approval or a rejection (`note`).
struct ReasonRequest: Decodable {
    var reason: BodyText?
    var note: BodyText?
}

/// `POST /api/v1/contracts/{id}/top-ups`: `hours` (10, 2.5 or "1:30") or `seconds`, a note, and optionally the last
/// day the hours may be used and a price in minor units.
struct TopUpRequest: Decodable {
    var hours: BodyHours?
    var seconds: BodyInt?
    var note: BodyText
    var expires: BodyText?
    var price: BodyInt?
}

/// Hours as a number (2.5) or as text ("2.5", "1:30"), read exactly into whole seconds.
struct BodyHours: Decodable {
    let seconds: Int

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text: String
        if let string = try? container.decode(String.self) {
            text = string
        } else if let number = try? container.decode(Decimal.self) {
            text = "\(number)"
        } else {
            throw FieldProblem(decoder, "must be hours: a number such as 2.5 or text such as \"1:30\"")
        }
        guard let seconds = HoursText.seconds(parsing: text) else {
            throw FieldProblem(decoder, "must be hours such as 10, 2.5 or \"1:30\" (a whole number of seconds), got \(text.prefix(40))")
        }
        self.seconds = seconds
    }
}

/// Text a person typed (a note, a reason, a description): at most 4000 bytes, no control characters but tab and newline.
struct BodyText: Decodable {
    let value: String

    init(from decoder: any Decoder) throws {
        let text: String
        do {
            text = try decoder.singleValueContainer().decode(String.self)
        } catch DecodingError.typeMismatch {
            throw FieldProblem(decoder, "must be a string")
        }
        guard text.utf8.count <= 4000 else { throw FieldProblem(decoder, "is longer than 4000 bytes") }
        if let problem = TextRules.controlCharacterProblem(text) { throw FieldProblem(decoder, problem) }
        value = text
    }
}

/// A whole number. Foundation's decoder names no field when a number does not fit an `Int` (1.5, 1e30), so the
/// field's own decoder says which.
struct BodyInt: Decodable {
    let value: Int

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() { throw FieldProblem(decoder, "is required") }
        do {
            value = try container.decode(Int.self)
        } catch {
            throw FieldProblem(decoder, "must be an integer")
        }
    }
}

/// An entry kind by name.
struct BodyKind: Decodable {
    let value: EntryKind

    init(from decoder: any Decoder) throws {
        guard let text = try? decoder.singleValueContainer().decode(String.self), let kind = EntryKind(rawValue: text) else {
            throw FieldProblem(decoder, "must be billable, internal or prepaid")
        }
        value = kind
    }
}

/// A field's value is refused by its own type's rule.
struct FieldProblem: Error {
    let field: String
    let message: String

    init(_ decoder: any Decoder, _ message: String) {
        field = decoder.codingPath.last?.stringValue ?? "body"
        self.message = message
    }
}

extension WorkRoutes {
    /// The request's JSON body as `T`. A body over `maxBodyBytes` is 413; an empty optional body decodes as `{}`.
    static func decode<T: Decodable>(_ type: T.Type, _ request: Request, optional: Bool = false) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: maxBodyBytes)
        } catch {
            throw APIFailure(.contentTooLarge, "the body is larger than \(maxBodyBytes) bytes", field: "body")
        }
        let data = buffer.readableBytes == 0 && optional ? Data("{}".utf8) : Data(buffer.readableBytesView)
        do {
            return try JSONDecoder().decode(T.self, from: data)
        } catch let problem as FieldProblem {
            throw APIFailure(.badRequest, "\(problem.field) \(problem.message)", field: problem.field)
        } catch let error as DecodingError {
            throw refusal(error)
        }
    }

    /// A decoding failure in the API's words, naming the field.
    static func refusal(_ error: DecodingError) -> APIFailure {
        func field(_ context: DecodingError.Context) -> String? { context.codingPath.first?.stringValue }
        let notAnObject = APIFailure(.badRequest, "the body must be a JSON object", field: "body")
        switch error {
        case .keyNotFound(let key, _):
            return APIFailure(.badRequest, "\(key.stringValue) is required", field: key.stringValue)
        case .valueNotFound(_, let context):
            guard let name = field(context) else { return notAnObject }
            return APIFailure(.badRequest, "\(name) is required", field: name)
        case .typeMismatch(let type, let context):
            guard let name = field(context) else { return notAnObject }
            let wanted = type == Bool.self ? "true or false" : type == String.self ? "a string" : "an integer"
            return APIFailure(.badRequest, "\(name) must be \(wanted)", field: name)
        case .dataCorrupted(let context):
            guard let name = field(context) else { return notAnObject }
            return APIFailure(.badRequest, "\(name) has a value that cannot be read", field: name)
        @unknown default:
            return notAnObject
        }
    }

    /// A manual entry's duration in seconds: an integer from 0 to one day.
    static func checkedDuration(_ seconds: Int, field: String = "duration_seconds") throws -> Int {
        if let problem = Bounds.checkEntrySeconds(seconds) { throw APIFailure(.badRequest, "\(field) \(problem)", field: field) }
        return seconds
    }

    /// When a manual entry's work began: an RFC 3339 date-time from 2000 to a day ahead of now.
    static func checkedStart(_ text: String, now: Date, field: String = "started_at") throws -> Date {
        guard let date = Timestamp.parse(text) else {
            throw APIFailure(.badRequest, "\(field) must be an RFC 3339 date-time such as 2026-11-21T09:00:00Z (a real day and time), got '\(text)'",
                             field: field)
        }
        if let problem = Bounds.checkEntryStart(date, now: now) { throw APIFailure(.badRequest, "\(field) \(problem)", field: field) }
        return date
    }
}
