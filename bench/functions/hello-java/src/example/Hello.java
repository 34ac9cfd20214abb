package example;

import java.util.Map;

/** Greets whoever ?name= or {"name": ...} names; GREETING comes from function.yaml. Lambda calls
 * a public method named by the handler (example.Hello::handleRequest) with the event mapped to its
 * parameter's type; implement com.amazonaws.services.lambda.runtime.RequestHandler to get the Context. */
public class Hello {
    public Map<String, String> handleRequest(Map<String, Object> event) {
        Object params = event.get("queryStringParameters");
        Object name = params instanceof Map<?, ?> query && query.get("name") != null ? query.get("name") : event.get("name");
        String who = name == null ? "world" : name.toString();
        System.out.println("greeting " + who);
        return Map.of("message", System.getenv("GREETING") + ", " + who + "!");
    }
}
