package chstore

// PlainEngine is plainEngine, for the tests of package chstore_test.
var PlainEngine = plainEngine
