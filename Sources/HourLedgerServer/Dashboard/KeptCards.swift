import Foundation
import HourLedgerUseCases
import Synchronization

/// Each contract card of `/contracts` as last rendered, per language, so a page of 24 cards renders again only the
/// cards whose figures may have changed. A card is kept while the store's balance revision (which every write moves,
/// in any process), the contract book and the minute (the chart's "today" and the forecast's instant) stay the same
/// and no period begins or ends, as `BalanceJSON.Kept` keeps the contract list.
final class KeptCards: Sendable {
    private struct Key: Hashable {
        var contractID: String
        var language: Language
    }

    private struct Card {
        var stamp: KeptStamp
        var from: Date
        var until: Date
        /// Empty for a contract outside its term, which has no card.
        var html: String
    }

    /// A thousand contracts in two languages is a few megabytes; past the bound the oldest stamps go first.
    private static let maxCards = 4096
    private let cards = Mutex<[Key: Card]>([:])

    /// The kept cards of `contractIDs` that still hold at `now` under `stamp`, by contract id ("" for no card).
    func cards(_ contractIDs: [String], language: Language, stamp: KeptStamp, at now: Date) -> [String: String] {
        cards.withLock { cards in
            var found: [String: String] = [:]
            for id in contractIDs {
                if let card = cards[Key(contractID: id, language: language)], card.stamp == stamp, card.from <= now, now < card.until {
                    found[id] = card.html
                }
            }
            return found
        }
    }

    /// Keeps freshly rendered cards, worked out under `stamp` and holding from `from` until `until`.
    func keep(_ rendered: [String: String], language: Language, stamp: KeptStamp, from: Date, until: Date) {
        cards.withLock { cards in
            if cards.count + rendered.count > Self.maxCards {
                cards = cards.filter { $0.value.stamp == stamp }
                if cards.count + rendered.count > Self.maxCards { cards = [:] }
            }
            for (id, html) in rendered {
                cards[Key(contractID: id, language: language)] = Card(stamp: stamp, from: from, until: until, html: html)
            }
        }
    }
}
