<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.16-Białowieża" styleCategories="Symbology">
  <renderer-v2 type="singleSymbol" forceraster="0" enableorderby="0" symbollevels="0" referencescale="-1">
    <symbols>
    <symbol type="line" name="0" alpha="1" clip_to_extent="1" force_rhr="0">
      <data_defined_properties>
        <Option type="Map">
          <Option type="QString" name="name" value=""/>
          <Option name="properties"/>
          <Option type="QString" name="type" value="collection"/>
        </Option>
      </data_defined_properties>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="255,255,255,255"/>
          <Option type="QString" name="line_style" value="solid"/>
          <Option type="QString" name="line_width" value="1.4"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
      <layer class="SimpleLine" enabled="1" locked="0" pass="0">
        <Option type="Map">
          <Option type="QString" name="align_dash_pattern" value="0"/>
          <Option type="QString" name="capstyle" value="round"/>
          <Option type="QString" name="customdash" value="5;2"/>
          <Option type="QString" name="customdash_unit" value="MM"/>
          <Option type="QString" name="draw_inside_polygon" value="0"/>
          <Option type="QString" name="joinstyle" value="round"/>
          <Option type="QString" name="line_color" value="30,30,30,255"/>
          <Option type="QString" name="line_style" value="dash"/>
          <Option type="QString" name="line_width" value="0.7"/>
          <Option type="QString" name="line_width_unit" value="MM"/>
          <Option type="QString" name="offset" value="0"/>
          <Option type="QString" name="offset_unit" value="MM"/>
          <Option type="QString" name="ring_filter" value="0"/>
          <Option type="QString" name="trim_distance_end" value="0"/>
          <Option type="QString" name="trim_distance_start" value="0"/>
          <Option type="QString" name="tweak_dash_pattern_on_corners" value="0"/>
          <Option type="QString" name="use_custom_dash" value="0"/>
          <Option type="QString" name="width_map_unit_scale" value="3x:0,0,0,0,0,0"/>
        </Option>
      </layer>
    </symbol>
    </symbols>
    <rotation/>
    <sizescale/>
  </renderer-v2>
  <blendMode>0</blendMode>
  <featureBlendMode>0</featureBlendMode>
  <layerGeometryType>1</layerGeometryType>
</qgis>
