/// SmartTasks: scripts and web requests run on management events (Check Point's triggers and Rampart's
/// HA events), a before-publish veto, and delivery that never blocks a publish and never loses an event.
public enum SmartTasks {
    /// The module's name, as logs and errors say it.
    public static let name = "smarttasks"
}
