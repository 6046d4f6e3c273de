package dev.sylph.launcher.warm;

import com.amazonaws.services.lambda.runtime.ClientContext;
import com.amazonaws.services.lambda.runtime.CognitoIdentity;
import com.amazonaws.services.lambda.runtime.Context;
import com.amazonaws.services.lambda.runtime.LambdaLogger;

/** A do-nothing Context used only while warming a pre-started JVM. */
public final class WarmContext implements Context {
    private static final LambdaLogger SILENT = new LambdaLogger() {
        @Override public void log(String message) { }
        @Override public void log(byte[] message) { }
    };
    @Override public String getAwsRequestId() { return "00000000-0000-0000-0000-000000000000"; }
    @Override public String getLogGroupName() { return "warm"; }
    @Override public String getLogStreamName() { return "warm"; }
    @Override public String getFunctionName() { return "warm"; }
    @Override public String getFunctionVersion() { return "$LATEST"; }
    @Override public String getInvokedFunctionArn() { return "arn:aws:lambda:local:000000000000:function:warm"; }
    @Override public CognitoIdentity getIdentity() { return null; }
    @Override public ClientContext getClientContext() { return null; }
    @Override public int getRemainingTimeInMillis() { return 60000; }
    @Override public int getMemoryLimitInMB() { return 128; }
    @Override public LambdaLogger getLogger() { return SILENT; }
}
