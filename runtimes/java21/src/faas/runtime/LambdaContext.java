package faas.runtime;

import com.amazonaws.services.lambda.runtime.Client;
import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.Map;

/** Lambda's Context for one call, from the event's headers and the function's variables. */
final class LambdaContext implements Context {
    static volatile String current = ""; // the request being handled

    private static final LambdaLogger LOGGER = new LambdaLogger() {
        @Override
        public void log(String message) {
            // Each call is one log event on Lambda: here, one line of its own.
            String text = String.valueOf(message);
            System.out.print(text.endsWith("\n") ? text : text + "\n");
        }

        @Override
        public void log(byte[] message) {
            log(new String(message, StandardCharsets.UTF_8));
        }
    };

    private final String requestId;
    private final String invokedArn;
    private final long deadlineMs;
    private final CognitoIdentity identity;
    private final ClientContext clientContext;

    LambdaContext(RuntimeClient.Response event) {
        requestId = event.header("lambda-runtime-aws-request-id", "");
        invokedArn = event.header("lambda-runtime-invoked-function-arn", null);
        long deadline = 0;
        try {
            deadline = Long.parseLong(event.header("lambda-runtime-deadline-ms", "0"));
        } catch (NumberFormatException ignored) {
            // no deadline
        }
        deadlineMs = deadline;
        identity = identity(parse(event.header("lambda-runtime-cognito-identity", null)));
        clientContext = clientContext(parse(event.header("lambda-runtime-client-context", null)));
    }

    private static Map<String, Object> parse(String header) {
        if (header == null || header.isEmpty()) {
            return null;
        }
        try {
            return Json.MAPPER.readValue(header, Json.MAP);
        } catch (java.io.IOException e) {
            return null;
        }
    }

    private static String str(Map<?, ?> map, String key) {
        Object value = map == null ? null : map.get(key);
        return value == null ? null : String.valueOf(value);
    }

    private static Map<String, String> strings(Object value) {
        if (!(value instanceof Map<?, ?> map)) {
            return null;
        }
        Map<String, String> out = new LinkedHashMap<>();
        map.forEach((k, v) -> out.put(String.valueOf(k), v == null ? null : String.valueOf(v)));
        return out;
    }

    private static CognitoIdentity identity(Map<String, Object> values) {
        String id = str(values, "cognitoIdentityId");
        String pool = str(values, "cognitoIdentityPoolId");
        return new CognitoIdentity() {
            @Override
            public String getIdentityId() {
                return id == null ? "" : id;
            }

            @Override
            public String getIdentityPoolId() {
                return pool == null ? "" : pool;
            }
        };
    }

    private static ClientContext clientContext(Map<String, Object> values) {
        if (values == null) {
            return null;
        }
        Map<?, ?> client = values.get("client") instanceof Map<?, ?> m ? m : null;
        Client c = client == null ? null : new Client() {
            @Override
            public String getInstallationId() {
                return str(client, "installation_id");
            }

            @Override
            public String getAppTitle() {
                return str(client, "app_title");
            }

            @Override
            public String getAppVersionName() {
                return str(client, "app_version_name");
            }

            @Override
            public String getAppVersionCode() {
                return str(client, "app_version_code");
            }

            @Override
            public String getAppPackageName() {
                return str(client, "app_package_name");
            }
        };
        Map<String, String> custom = strings(values.get("custom"));
        Map<String, String> env = strings(values.get("env"));
        return new ClientContext() {
            @Override
            public Client getClient() {
                return c;
            }

            @Override
            public Map<String, String> getCustom() {
                return custom;
            }

            @Override
            public Map<String, String> getEnvironment() {
                return env;
            }
        };
    }

    @Override
    public String getAwsRequestId() {
        return requestId;
    }

    @Override
    public String getLogGroupName() {
        return System.getenv("AWS_LAMBDA_LOG_GROUP_NAME");
    }

    @Override
    public String getLogStreamName() {
        return System.getenv("AWS_LAMBDA_LOG_STREAM_NAME");
    }

    @Override
    public String getFunctionName() {
        return System.getenv("AWS_LAMBDA_FUNCTION_NAME");
    }

    @Override
    public String getFunctionVersion() {
        return System.getenv("AWS_LAMBDA_FUNCTION_VERSION");
    }

    @Override
    public String getInvokedFunctionArn() {
        return invokedArn;
    }

    @Override
    public CognitoIdentity getIdentity() {
        return identity;
    }

    @Override
    public ClientContext getClientContext() {
        return clientContext;
    }

    @Override
    public int getRemainingTimeInMillis() {
        long left = deadlineMs - System.currentTimeMillis();
        return left > 0 ? (int) Math.min(left, Integer.MAX_VALUE) : 0;
    }

    @Override
    public int getMemoryLimitInMB() {
        try {
            return Integer.parseInt(System.getenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE"));
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    @Override
    public LambdaLogger getLogger() {
        return LOGGER;
    }

    @Override
    public String toString() {
        return "LambdaContext[requestId=" + requestId + ",functionName=" + getFunctionName() + "]";
    }
}
