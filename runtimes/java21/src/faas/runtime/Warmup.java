package faas.runtime;

import java.util.Map;

/** At image build: the classes a call uses are loaded once, for the class-data-sharing archive. */
final class Warmup {
    private Warmup() {}

    static void run() throws Exception {
        Map<String, Object> event = Json.MAPPER.readValue("{\"a\":[1,2.5,null,true,\"x\"],\"b\":{\"c\":\"d\"}}", Json.MAP);
        Json.MAPPER.writeValueAsBytes(event);
        Json.MAPPER.writeValueAsBytes("text");
        Errors.body(new RuntimeException("warm", new IllegalStateException("cause")));
        Json.MAPPER.constructType(Map.class);
        new RuntimeClient("/nonexistent");
        Class.forName("faas.runtime.LambdaContext");
        Class.forName("faas.runtime.Main$Handler");
    }
}
