/**
 * The part of onnx.proto mcnc reads and edits, as protobufjs JSON (field numbers from onnx.proto): the
 * path to every weight, the graph's inputs and outputs, nodes and their attributes. Every other field is
 * carried through decode and encode as unknown bytes.
 */
export const ONNX_SCHEMA = {
  nested: {
    ModelProto: {
      fields: {
        graph: { type: "GraphProto", id: 7 },
        opsetImport: { rule: "repeated", type: "OperatorSetIdProto", id: 8 },
      },
    },
    OperatorSetIdProto: { fields: { domain: { type: "string", id: 1 }, version: { type: "int64", id: 2 } } },
    GraphProto: {
      fields: {
        node: { rule: "repeated", type: "NodeProto", id: 1 },
        name: { type: "string", id: 2 },
        initializer: { rule: "repeated", type: "TensorProto", id: 5 },
        input: { rule: "repeated", type: "ValueInfoProto", id: 11 },
        output: { rule: "repeated", type: "ValueInfoProto", id: 12 },
      },
    },
    ValueInfoProto: { fields: { name: { type: "string", id: 1 }, type: { type: "TypeProto", id: 2 } } },
    TypeProto: { fields: { tensorType: { type: "TypeTensor", id: 1 } } },
    TypeTensor: { fields: { elemType: { type: "int32", id: 1 }, shape: { type: "ShapeProto", id: 2 } } },
    ShapeProto: { fields: { dim: { rule: "repeated", type: "DimProto", id: 1 } } },
    DimProto: { fields: { dimValue: { type: "int64", id: 1 }, dimParam: { type: "string", id: 2 } } },
    NodeProto: {
      fields: {
        input: { rule: "repeated", type: "string", id: 1 },
        output: { rule: "repeated", type: "string", id: 2 },
        name: { type: "string", id: 3 },
        opType: { type: "string", id: 4 },
        attribute: { rule: "repeated", type: "AttributeProto", id: 5 },
        domain: { type: "string", id: 7 },
      },
    },
    AttributeProto: {
      fields: {
        name: { type: "string", id: 1 },
        f: { type: "float", id: 2 },
        i: { type: "int64", id: 3 },
        s: { type: "bytes", id: 4 },
        t: { type: "TensorProto", id: 5 },
        g: { type: "GraphProto", id: 6 },
        tensors: { rule: "repeated", type: "TensorProto", id: 10 },
        graphs: { rule: "repeated", type: "GraphProto", id: 11 },
        ints: { rule: "repeated", type: "int64", id: 8, options: { packed: false } },
        type: { type: "int32", id: 20 },
      },
    },
    TensorProto: {
      fields: {
        dims: { rule: "repeated", type: "int64", id: 1, options: { packed: false } },
        dataType: { type: "int32", id: 2 },
        floatData: { rule: "repeated", type: "float", id: 4 },
        int32Data: { rule: "repeated", type: "int32", id: 5 },
        name: { type: "string", id: 8 },
        rawData: { type: "bytes", id: 9 },
        externalData: { rule: "repeated", type: "StringStringEntryProto", id: 13 },
        dataLocation: { type: "int32", id: 14 },
      },
    },
    StringStringEntryProto: { fields: { key: { type: "string", id: 1 }, value: { type: "string", id: 2 } } },
  },
};

