import SmartTasks
import Testing

@Suite struct SmartTasksModuleTests {
    @Test func theModuleNamesItself() {
        #expect(SmartTasks.name == "smarttasks")
    }
}
