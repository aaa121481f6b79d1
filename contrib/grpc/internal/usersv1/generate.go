// Package usersv1 is the generated code of users.proto, the test service
// of contrib/grpc.
package usersv1

//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative users.proto
