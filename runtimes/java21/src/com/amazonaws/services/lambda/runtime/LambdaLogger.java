package com.amazonaws.services.lambda.runtime;

/** The function's log, as in aws-lambda-java-core. */
public interface LambdaLogger {
    void log(String message);

    void log(byte[] message);
}
