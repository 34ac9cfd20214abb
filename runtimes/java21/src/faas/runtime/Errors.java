package faas.runtime;

import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.UndeclaredThrowableException;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Error bodies and log lines in the shape Lambda's Java runtime gives them. */
final class Errors {
    private static final int MAX_CAUSES = 16; // bounded: a cause chain may loop

    private Errors() {}

    /** A runtime-level failure with one of Lambda's Runtime.* error types. */
    static final class Fault extends Exception {
        final String type;

        Fault(String type, String message) {
            super(message, null, false, false);
            this.type = type;
        }
    }

    static Throwable unwrap(Throwable t) {
        for (int i = 0; i < MAX_CAUSES && t.getCause() != null
                && (t instanceof InvocationTargetException || t instanceof UndeclaredThrowableException); i++) {
            t = t.getCause();
        }
        return t;
    }

    static String firstLine(String text) {
        if (text == null) {
            return "";
        }
        int nl = text.indexOf('\n');
        return nl < 0 ? text : text.substring(0, nl);
    }

    /** {"errorMessage", "errorType", "stackTrace", "cause"}: the runtime's own frames left out. */
    static Map<String, Object> body(Throwable t) {
        return body(t, 0);
    }

    private static Map<String, Object> body(Throwable t, int depth) {
        Map<String, Object> out = new LinkedHashMap<>();
        if (t instanceof Fault f) {
            out.put("errorMessage", f.getMessage());
            out.put("errorType", f.type);
            return out;
        }
        String message = t.getMessage();
        if (message != null) {
            out.put("errorMessage", message);
        }
        out.put("errorType", t.getClass().getName());
        out.put("stackTrace", frames(t));
        Throwable cause = t.getCause();
        if (cause != null && cause != t && depth < MAX_CAUSES) {
            out.put("cause", body(cause, depth + 1));
        }
        return out;
    }

    private static List<String> frames(Throwable t) {
        List<String> out = new ArrayList<>();
        for (StackTraceElement e : t.getStackTrace()) {
            String cls = e.getClassName();
            if (cls.startsWith("faas.runtime.") || cls.startsWith("jdk.internal.reflect.") || cls.startsWith("java.lang.reflect.")) {
                break; // below the handler: reflection and this runtime
            }
            String where = e.isNativeMethod() ? "Native Method"
                    : e.getFileName() == null ? "Unknown Source"
                    : e.getLineNumber() >= 0 ? e.getFileName() + ":" + e.getLineNumber() : e.getFileName();
            out.add(cls + "." + e.getMethodName() + "(" + where + ")");
        }
        return out;
    }

    /** The log lines Lambda's Java runtime prints for a failed call: the body, as JSON. */
    static void log(Throwable t, Map<String, Object> body) {
        try {
            System.out.println(Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsString(body));
        } catch (java.io.IOException e) {
            System.out.println(t);
        }
        System.out.flush();
    }
}
