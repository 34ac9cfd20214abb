package com.amazonaws.services.lambda.runtime;

/** A handler with POJO input and output, as in aws-lambda-java-core. */
public interface RequestHandler<I, O> {
    O handleRequest(I input, Context context);
}
