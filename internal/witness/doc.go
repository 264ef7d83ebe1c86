// Package witness runs the product's AWS-facing tests against more than
// one server: the project's emulator and moto (a third-party AWS mock,
// started as "python3 -m moto.server" on a loopback port once per test
// binary). A test loops over Endpoints and runs a subtest per witness,
// named after it, so that a mistake the emulator shares with the product
// shows up as a disagreement with moto. Where moto contradicts the AWS
// documentation, the test names the page and skips only that assertion
// for moto.
//
// moto does not implement UpdateObjectEncryption (it would read it as a
// PutObject and overwrite the object): nothing may send it one.
package witness
