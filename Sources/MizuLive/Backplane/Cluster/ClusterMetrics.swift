import CoreMetrics

/// A cluster broker's own metrics, beside each shard's ``BrokerMetrics`` (which carry a
/// `shard` dimension): commands a primary refused and that were sent again, by the refusing
/// primary and the refusal (`moved`, `ask`, `tryagain`, `clusterdown`, `order`); topics
/// subscribed again on a new owner, by that owner; slot map changes; held commands given up.
struct ClusterMetrics: Sendable {
    let factory: any MetricsFactory
    let mapChanges: Counter
    let givenUp: Counter

    init(factory: any MetricsFactory) {
        self.factory = factory
        self.mapChanges = Counter(label: "mizu_live_cluster_map_changes_total", factory: factory)
        self.givenUp = Counter(label: "mizu_live_cluster_held_given_up_total", factory: factory)
    }

    /// Rare (a failover, a migration): the counter is looked up per event.
    func redirected(by shard: ClusterNodeAddress, _ redirect: ClusterRedirect) {
        let kind: String
        switch redirect {
        case .moved: kind = "moved"
        case .ask: kind = "ask"
        case .tryAgain: kind = "tryagain"
        case .clusterDown: kind = "clusterdown"
        case .outOfOrder: kind = "order"
        case .other: kind = "other"
        }
        Counter(label: "mizu_live_cluster_redirects_total", dimensions: [("shard", shard.description), ("kind", kind)], factory: self.factory)
            .increment()
    }

    func resubscribed(on shard: ClusterNodeAddress) {
        Counter(label: "mizu_live_cluster_resubscribes_total", dimensions: [("shard", shard.description)], factory: self.factory).increment()
    }
}
