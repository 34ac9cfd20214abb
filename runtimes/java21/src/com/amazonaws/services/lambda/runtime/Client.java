package com.amazonaws.services.lambda.runtime;

/** The calling mobile app, as in aws-lambda-java-core. */
public interface Client {
    String getInstallationId();

    String getAppTitle();

    String getAppVersionName();

    String getAppVersionCode();

    String getAppPackageName();
}
