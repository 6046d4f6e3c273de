package dev.sylph.launcher; public final class Launcher { public static void main(String[] a) {} }
