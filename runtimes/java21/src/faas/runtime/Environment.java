package faas.runtime;

import java.lang.reflect.Field;
import java.util.Map;

/**
 * Sets variables in System.getenv(): the function's variables arrive over the socket after the
 * JVM has started, and a function reads them with System.getenv as on Lambda (where they are
 * set before the JVM starts). Needs --add-opens java.base/java.lang and java.base/java.util.
 */
final class Environment {
    private Environment() {}

    @SuppressWarnings("unchecked")
    static void apply(Map<String, String> values) {
        try {
            Class<?> pe = Class.forName("java.lang.ProcessEnvironment");
            Field field = pe.getDeclaredField("theUnmodifiableEnvironment");
            field.setAccessible(true);
            Object unmodifiable = field.get(null);
            Field inner = unmodifiable.getClass().getDeclaredField("m");
            inner.setAccessible(true);
            ((Map<String, String>) inner.get(unmodifiable)).putAll(values);
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalStateException("cannot set the function's environment variables: " + e, e);
        }
    }
}
